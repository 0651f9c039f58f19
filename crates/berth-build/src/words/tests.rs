//! Tests of [`super`].
use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn word_with(escape: char, input: &str, pairs: &[(&str, &str)]) -> Result<Expanded, WordError> {
    let env = env_of(pairs);
    Lexer::new(escape).process_word(input, &|k: &str| env.get(k).cloned())
}

fn word(input: &str, pairs: &[(&str, &str)]) -> Result<String, WordError> {
    word_with('\\', input, pairs).map(|e| e.value)
}

fn words(input: &str, pairs: &[(&str, &str)]) -> Result<Vec<String>, WordError> {
    let env = env_of(pairs);
    Lexer::new('\\').process_words(input, &|k: &str| env.get(k).cloned())
}

/// `(input, environment, expected)`.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

const ENVVAR_ENV: &[(&str, &str)] = &[
    ("PWD", "/home"),
    ("SHELL", "bash"),
    ("KOREAN", "한국어"),
    ("NULL", ""),
];

/// BuildKit's `envVarTest` cases (the Unix/"all" ones), with its env.
const ENVVAR_TEST: &str = r#"
hello                    |     hello
he'll'o                  |     hello
he'llo                   |     error
he\'llo                  |     he'llo
he\\'llo                 |     error
abc\tdef                 |     abctdef
"abc\tdef"               |     abc\tdef
"abc\\tdef"              |     abc\tdef
'abc\tdef'               |     abc\tdef
hello\                   |     hello
hello\\                  |     hello\
"hello                   |     error
"hello\"                 |     error
"hel'lo"                 |     hel'lo
'hello                   |     error
'hello\'                 |     hello\
'hello\there'            |     hello\there
'hello\\there'           |     hello\\there
"''"                     |     ''
$.                       |     $.
he$1x                    |     hex
he$.x                    |     he$.x
he$pwd.                  |     he.
he$PWD                   |     he/home
he\$PWD                  |     he$PWD
he\\$PWD                 |     he\/home
"he\$PWD"                |     he$PWD
"he\\$PWD"               |     he\/home
\${}                     |     ${}
\${}aaa                  |     ${}aaa
he\${}                   |     he${}
he\${}xx                 |     he${}xx
${}                      |     error
${}aaa                   |     error
he${}                    |     error
he${}xx                  |     error
he${hi}                  |     he
he${hi}xx                |     hexx
he${PWD}                 |     he/home
he${.}                   |     error
he${XXX:-000}xx          |     he000xx
he${PWD:-000}xx          |     he/homexx
he${XXX:-$PWD}xx         |     he/homexx
he${XXX:-${PWD:-yyy}}xx  |     he/homexx
he${XXX:-${YYY:-yyy}}xx  |     heyyyxx
he${XXX:YYY}             |     error
he${XXX?}                |     error
he${XXX:?}               |     error
he${PWD?}                |     he/home
he${PWD:?}               |     he/home
he${NULL?}               |     he
he${NULL:?}              |     error
he${XXX:+${PWD}}xx       |     hexx
he${PWD:+${XXX}}xx       |     hexx
he${PWD:+${SHELL}}xx     |     hebashxx
he${XXX:+000}xx          |     hexx
he${PWD:+000}xx          |     he000xx
'he${XX}'                |     he${XX}
"he${PWD}"               |     he/home
"he'$PWD'"               |     he'/home'
"$PWD"                   |     /home
'$PWD'                   |     $PWD
'\$PWD'                  |     \$PWD
'"hello"'                |     "hello"
he\$PWD                  |     he$PWD
"he\$PWD"                |     he$PWD
'he\$PWD'                |     he\$PWD
he${PWD                  |     error
he${PWD:=000}xx          |     error
he${PWD:+${PWD}:}xx      |     he/home:xx
he${XXX:-\$PWD:}xx       |     he$PWD:xx
he${XXX:-\${PWD}z}xx     |     he${PWDz}xx
안녕하세요                 |     안녕하세요
안'녕'하세요               |     안녕하세요
안'녕하세요                |     error
안녕\'하세요               |     안녕'하세요
안\\'녕하세요              |     error
안녕\t하세요               |     안녕t하세요
"안녕\t하세요"             |     안녕\t하세요
'안녕\t하세요              |     error
안녕하세요\                |     안녕하세요
안녕하세요\\               |     안녕하세요\
"안녕하세요                |     error
"안녕하세요\"              |     error
"안녕'하세요"              |     안녕'하세요
'안녕하세요                |     error
'안녕하세요\'              |     안녕하세요\
안녕$1x                    |     안녕x
안녕$.x                    |     안녕$.x
안녕$pwd.                  |     안녕.
안녕$PWD                   |     안녕/home
안녕\$PWD                  |     안녕$PWD
안녕\\$PWD                 |     안녕\/home
안녕\${}                   |     안녕${}
안녕\${}xx                 |     안녕${}xx
안녕${}                    |     error
안녕${}xx                  |     error
안녕${hi}                  |     안녕
안녕${hi}xx                |     안녕xx
안녕${PWD}                 |     안녕/home
안녕${.}                   |     error
안녕${XXX:-000}xx          |     안녕000xx
안녕${PWD:-000}xx          |     안녕/homexx
안녕${XXX:-$PWD}xx         |     안녕/homexx
안녕${XXX:-${PWD:-yyy}}xx  |     안녕/homexx
안녕${XXX:-${YYY:-yyy}}xx  |     안녕yyyxx
안녕${XXX:YYY}             |     error
안녕${XXX:+${PWD}}xx       |     안녕xx
안녕${PWD:+${XXX}}xx       |     안녕xx
안녕${PWD:+${SHELL}}xx     |     안녕bashxx
안녕${XXX:+000}xx          |     안녕xx
안녕${PWD:+000}xx          |     안녕000xx
'안녕${XX}'                |     안녕${XX}
"안녕${PWD}"               |     안녕/home
"안녕'$PWD'"               |     안녕'/home'
'"안녕"'                   |     "안녕"
안녕\$PWD                  |     안녕$PWD
"안녕\$PWD"                |     안녕$PWD
'안녕\$PWD'                |     안녕\$PWD
안녕${PWD                  |     error
안녕${PWD:=000}xx          |     error
안녕${PWD:+${PWD}:}xx      |     안녕/home:xx
안녕${XXX:-\$PWD:}xx       |     안녕$PWD:xx
안녕${XXX:-\${PWD}z}xx     |     안녕${PWDz}xx
$KOREAN                    |     한국어
안녕$KOREAN                |     안녕한국어
${{aaa}                   |     error
${aaa}}                   |     }
${aaa                     |     error
${{aaa:-bbb}              |     error
${aaa:-bbb}}              |     bbb}
${aaa:-bbb                |     error
${aaa:-bbb}               |     bbb
${aaa:-${bbb:-ccc}}       |     ccc
${aaa:-bbb ${foo}         |     error
${aaa:-bbb {foo}          |     bbb {foo
${:}                      |     error
${:-bbb}                  |     error
${:+bbb}                  |     error
$1                        |
${1}                      |
${1:+bbb}                 |
${1:-bbb}                 |     bbb
$9                        |
${9}                      |
${9:+bbb}                 |
${9:-bbb}                 |     bbb
$999                      |
${999}                    |
${999:+bbb}               |
${999:-bbb}               |     bbb
$999aaa                   |     aaa
${999}aaa                 |     aaa
${999:+bbb}aaa            |     aaa
${999:-bbb}aaa            |     bbbaaa
$001                      |
${001}                    |
${001:+bbb}               |
${001:-bbb}               |     bbb
$001aaa                   |     aaa
${001}aaa                 |     aaa
${001:+bbb}aaa            |     aaa
${001:-bbb}aaa            |     bbbaaa
$@                        |
${@}                      |
${@:+bbb}                 |
${@:-bbb}                 |     bbb
$@@@                      |     @@
$@aaa                     |     aaa
${@}aaa                   |     aaa
${@:+bbb}aaa              |     aaa
${@:-bbb}aaa              |     bbbaaa
$*                        |
${*}                      |
${*:+bbb}                 |
${*:-bbb}                 |     bbb
$#                        |
${#}                      |
${#:+bbb}                 |
${#:-bbb}                 |     bbb
$?                        |
${?}                      |
${?:+bbb}                 |
${?:-bbb}                 |     bbb
$-                        |
${-}                      |
${-:+bbb}                 |
${-:-bbb}                 |     bbb
$$                        |
${$}                      |
${$:+bbb}                 |
${$:-bbb}                 |     bbb
$!                        |
${!}                      |
${!:+bbb}                 |
${!:-bbb}                 |     bbb
$0                        |
${0}                      |
${0:+bbb}                 |
${0:-bbb}                 |     bbb
"#;

#[test]
fn buildkit_envvar_test_data() {
    let mut count = 0;
    for line in ENVVAR_TEST.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (source, expected) = line.split_once('|').unwrap();
        let (source, expected) = (source.trim(), expected.trim());
        let got = word(source, ENVVAR_ENV);
        if expected == "error" {
            assert!(got.is_err(), "{source:?} should fail, got {got:?}");
        } else {
            assert_eq!(got.as_deref(), Ok(expected), "input {source:?}");
        }
        count += 1;
    }
    assert!(count >= 200, "{count}");
}

/// BuildKit's `wordsTest` cases for `process_words` (`,` separates words).
#[test]
fn buildkit_words_test_data() {
    let data: &[Case] = &[
        ("hello", &[], "hello"),
        ("hello${hi}bye", &[], "hellobye"),
        ("hello${hi}bye", &[("hi", "hi")], "hellohibye"),
        (
            "hello${space}bye",
            &[("space", "abc  def")],
            "helloabc,defbye",
        ),
        (
            "hello\"${space}\"bye",
            &[("space", "abc  def")],
            "helloabc  defbye",
        ),
        (
            "hello \"${space}\"bye",
            &[("space", "abc  def")],
            "hello,abc  defbye",
        ),
        (
            "hello${leading}def",
            &[("leading", "  ab c")],
            "hello,ab,cdef",
        ),
        (
            "hello\"${leading}\" def",
            &[("leading", "  ab c")],
            "hello  ab c,def",
        ),
        (
            "hello\"${leading}\"",
            &[("leading", "  ab c")],
            "hello  ab c",
        ),
        ("hello${leading}", &[("leading", "  ab c")], "hello,ab,c"),
        ("hello${trailing}", &[("trailing", "ab c   ")], "helloab,c"),
        (
            "hello${trailing}d",
            &[("trailing", "ab c   ")],
            "helloab,c,d",
        ),
        (
            "hello\"${trailing}\"d",
            &[("trailing", "ab c   ")],
            "helloab c   d",
        ),
        (
            "hel\"lo${trailing}\"",
            &[("trailing", "ab c   ")],
            "helloab c   ",
        ),
        ("hello\" there  \"", &[], "hello there  "),
        ("hello there     ", &[], "hello,there"),
        ("hello\\ there", &[], "hello there"),
        ("hello\" there", &[], "error"),
        ("hello\\\" there", &[], "hello\",there"),
        ("hello\"\\\\there\"", &[], "hello\\there"),
        ("hello\"\\there\"", &[], "hello\\there"),
        ("hello'\\\\there'", &[], "hello\\\\there"),
        ("hello'\\there'", &[], "hello\\there"),
        ("hello'$there'", &[], "hello$there"),
    ];
    for &(input, env, expected) in data {
        let got = match words(input, env) {
            Ok(w) => w.join(","),
            Err(_) => "error".to_string(),
        };
        assert_eq!(got, expected, "input {input:?}");
    }
}

#[test]
fn words_edge_cases() {
    assert_eq!(words("", &[]).unwrap(), Vec::<String>::new());
    assert_eq!(words("   ", &[]).unwrap(), Vec::<String>::new());
    assert_eq!(words("\"\"", &[]).unwrap(), Vec::<String>::new());
    assert_eq!(words("a \"\" b", &[]).unwrap(), vec!["a", "b"]);
    assert_eq!(words("a\tb\nc", &[]).unwrap(), vec!["a", "b", "c"]);
    assert_eq!(words("'a b' c", &[]).unwrap(), vec!["a b", "c"]);
    assert_eq!(words("$X", &[("X", "  ")]).unwrap(), Vec::<String>::new());
    // The value of a modifier word is split when unquoted...
    assert_eq!(words("${U:-a b}", &[]).unwrap(), vec!["a", "b"]);
    // ...even when the word itself had quotes (they are consumed inside).
    assert_eq!(words("${U:-\"a b\"}", &[]).unwrap(), vec!["a", "b"]);
    assert_eq!(words("\"${U:-a b}\"", &[]).unwrap(), vec!["a b"]);
    // Text before a modifier expansion is kept in the same word.
    assert_eq!(words("foo${U:-bar}", &[]).unwrap(), vec!["foobar"]);
    assert_eq!(
        words("x foo${U:-bar}baz y", &[]).unwrap(),
        vec!["x", "foobarbaz", "y"]
    );
    assert_eq!(
        words("80/tcp ${P:-443}", &[]).unwrap(),
        vec!["80/tcp", "443"]
    );
    assert!(words("${", &[]).is_err());
}

#[test]
fn mandatory_env_vars() {
    let no_empty = "${VAR:?message here$ARG}";
    let no_unset = "${VAR?message here$ARG}";
    let set = [("VAR", "plain"), ("ARG", "x")];
    let empty = [("VAR", ""), ("ARG", "x")];
    let unset = [("ARG", "x")];

    assert_eq!(word(no_empty, &set).unwrap(), "plain");
    let e = word(no_empty, &empty).unwrap_err();
    assert!(e.message.contains("VAR: message herex"), "{e}");
    let e = word(no_empty, &unset).unwrap_err();
    assert!(e.message.contains("VAR: message herex"), "{e}");

    assert_eq!(word(no_unset, &set).unwrap(), "plain");
    assert_eq!(word(no_unset, &empty).unwrap(), "");
    let e = word(no_unset, &unset).unwrap_err();
    assert!(e.message.contains("message herex"), "{e}");

    let e = word("${V?}", &[]).unwrap_err();
    assert!(e.message.contains("V: is not allowed to be unset"), "{e}");
    let e = word("${V:?}", &[("V", "")]).unwrap_err();
    assert!(e.message.contains("V: is not allowed to be empty"), "{e}");
    assert_eq!(
        e.message,
        "failed to process \"${V:?}\": V: is not allowed to be empty"
    );
}

#[test]
fn used_and_unset_tracking() {
    let e = word_with('\\', "x", &[("DUMMY", "d")]).unwrap();
    assert!(e.used.is_empty() && e.unset.is_empty());

    let e = word_with('\\', "x ${UNUSED}", &[]).unwrap();
    assert_eq!(e.value, "x ");
    assert_eq!(e.used, vec!["UNUSED"]);
    assert_eq!(e.unset, vec!["UNUSED"]);

    let env = [("FOO", "xxx"), ("BAR", "")];
    let e = word_with('\\', "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", &env).unwrap();
    assert_eq!(e.value, "xxx  ccc");
    assert_eq!(e.used, vec!["FOO", "BAR", "BAZ"]);
    assert_eq!(e.unset, vec!["BAZ"]);

    let e = word_with('\\', "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", &env).unwrap();
    assert_eq!(e.value, "xxx bbb ccc");
    let e = word_with('\\', "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", &env).unwrap();
    assert_eq!(e.value, "aaa bbb ");
    let e = word_with('\\', "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", &env).unwrap();
    assert_eq!(e.value, "aaa  ");
    assert_eq!(e.unset, vec!["BAZ"]);

    // Duplicates are reported once; names inside modifier words count.
    let e = word_with('\\', "$A$A${A:-$B}${C:+$D}", &[("A", "1")]).unwrap();
    assert_eq!(e.value, "111");
    // A modifier's word is expanded before the variable is looked up.
    assert_eq!(e.used, vec!["A", "B", "D", "C"]);
    assert_eq!(e.unset, vec!["B", "D", "C"]);

    // Names in single quotes or escaped are not looked up.
    let e = word_with('\\', "'$A' \\$B", &[]).unwrap();
    assert!(e.used.is_empty());
    assert_eq!(e.value, "$A $B");
}

#[test]
fn unsupported_modifiers() {
    for input in [
        "${FOO=aaa}",
        "${FOO=:aaa}",
        "${FOO=}",
        "${FOO:#}",
        "${FOO:##}",
        "${FOO:%}",
        "${FOO:%%}",
        "${FOO:x}",
        "${FOO:=x}",
        "${FOO x}",
        "${FOO.x}",
        "${FOO:",
        "${FOO:}",
    ] {
        assert!(word(input, &[("FOO", "xxx")]).is_err(), "{input}");
    }
    let e = word("${FOO=aaa}", &[]).unwrap_err();
    assert_eq!(
        e.message,
        "failed to process \"${FOO=aaa}\": unsupported modifier (=) in substitution"
    );
}

#[test]
fn unterminated_errors() {
    let cases = [
        ("${", "missing '}'"),
        ("${A", "missing '}'"),
        ("${A:-x", "missing '}'"),
        ("${A:-'x}", "missing '}'"),
        ("${A/x}", "missing '/' in ${"),
        ("${A//}", "missing '/' in ${"),
        ("${A/x/y", "missing '}'"),
        ("'abc", "matching single-quote"),
        ("\"abc", "matching double-quote"),
        ("${}", "bad substitution"),
        ("${{a}", "bad substitution"),
        ("${:a}", "bad substitution"),
    ];
    for (input, needle) in cases {
        let e = word(input, &[("A", "v")]).unwrap_err();
        assert!(e.message.contains(needle), "{input}: {e}");
        assert!(e.to_string().starts_with("failed to process"));
    }
}

#[test]
fn pattern_modifiers() {
    let cases: &[Case] = &[
        (
            "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
            &[("FOO", "()[]{}^$.*?|\\x")],
            "x",
        ),
        ("${FOO%%\\**}", &[("FOO", "xx**")], "xx"),
        ("${FOO#*x*y}", &[("FOO", "xxyy")], "y"),
        ("${FOO#*}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO##*}", &[("FOO", "xxyy")], ""),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], "xyy"),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")], "xxyy"),
        ("${FOO#}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO##*x}", &[("FOO", "xxyy")], "yy"),
        ("${FOO#*x}", &[("FOO", "xxyy")], "xyy"),
        ("${FOO##}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO#?\\?}", &[("FOO", "???y")], "?y"),
        ("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")], ".xxyy."),
        ("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], "a"),
        ("${FOO%\\**\\*}", &[("FOO", "a***yy*")], "a**"),
        ("${FOO%}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO%%$BAR}", &[("FOO", "xxyy"), ("BAR", "")], "xxyy"),
        ("${FOO%y*}", &[("FOO", "xxyy")], "xxy"),
        ("${FOO%%y*}", &[("FOO", "xxyy")], "xx"),
        ("${FOO%.*}", &[("FOO", "file.tar.gz")], "file.tar"),
        ("${FOO%%.*}", &[("FOO", "file.tar.gz")], "file"),
        ("${FOO#*.}", &[("FOO", "file.tar.gz")], "tar.gz"),
        ("${FOO##*.}", &[("FOO", "file.tar.gz")], "gz"),
        ("${FOO##*/}", &[("FOO", "/usr/local/bin/tool")], "tool"),
        (
            "${FOO%/*}",
            &[("FOO", "/usr/local/bin/tool")],
            "/usr/local/bin",
        ),
        ("${FOO#v}", &[("FOO", "v1.2.3")], "1.2.3"),
        ("${FOO#?}", &[("FOO", "안녕")], "녕"),
        ("${NOPE#x}", &[], ""),
        ("${FOO#nomatch}", &[("FOO", "abc")], "abc"),
        ("${FOO#\"a*\"}", &[("FOO", "abc")], "bc"),
        ("${FOO#'a*'}", &[("FOO", "abc")], "bc"),
    ];
    for &(input, env, expected) in cases {
        assert_eq!(word(input, env).as_deref(), Ok(expected), "input {input:?}");
    }
    assert!(word("${FOO#\\x}", &[("FOO", "x")]).is_err());
    let e = word("${FOO#a\\x}", &[("FOO", "x")]).unwrap_err();
    assert!(
        e.message.contains("invalid pattern (a\\x) in substitution"),
        "{e}"
    );
}

#[test]
fn replace_modifiers() {
    let cases: &[Case] = &[
        (
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
            "/foo.*/*.txt - /foo..*.txt",
        ),
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
            "/tmp/bar.txt - /bar.txt",
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
            &[
                ("FOO", "/a/foo/b/c.txt"),
                ("NEEDLE", "/?/"),
                ("REPLACEMENT", "/"),
            ],
            "/foo/b/c.txt - /foo/c.txt",
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT}",
            &[
                ("FOO", "http://google.de"),
                ("NEEDLE", "http://"),
                ("REPLACEMENT", "https://"),
            ],
            "https://google.de",
        ),
        (
            "${FOO//\\//\\/}",
            &[("FOO", "/tmp/foo.txt")],
            "\\/tmp\\/foo.txt",
        ),
        ("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")], "wwxxyy"),
        ("${FOO///}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO///}", &[], ""),
        ("${FOO/x/z}", &[("FOO", "xxyy")], "zxyy"),
        ("${FOO//x/z}", &[("FOO", "xxyy")], "zzyy"),
        ("${FOO/x*/z}", &[("FOO", "axxyy")], "az"),
        ("${FOO//?/z}", &[("FOO", "abc")], "zzz"),
        ("${FOO//-/_}", &[("FOO", "a-b-c")], "a_b_c"),
        ("${FOO//*/z}", &[("FOO", "abc")], "z"),
        ("${FOO//*/z}", &[("FOO", "")], "z"),
        ("${FOO//y*/z}", &[("FOO", "abc")], "abc"),
        ("${FOO/ab/$BAR}", &[("FOO", "abab"), ("BAR", "Q")], "Qab"),
        ("${FOO//a b/_}", &[("FOO", "a ba b")], "__"),
        ("${FOO//\"a b\"/_}", &[("FOO", "a ba b")], "__"),
    ];
    for &(input, env, expected) in cases {
        assert_eq!(word(input, env).as_deref(), Ok(expected), "input {input:?}");
    }
    let e = word("${FOO//ww}", &[("FOO", "xxyy")]).unwrap_err();
    assert!(e.message.contains("missing '/' in ${}"), "{e}");
    assert!(word("${FOO//}", &[("FOO", "xxyy")]).is_err());
    assert!(word("${FOO/\\a/b}", &[("FOO", "xxyy")]).is_err());
}

#[test]
fn replace_all_empty_matches_like_go() {
    // An empty pattern matches between every character in Go's
    // ReplaceAllString, but not directly after a previous match.
    let toks = parse_pattern("").unwrap();
    assert_eq!(replace(&toks, "ab", "-", true), "-a-b-");
    assert_eq!(replace(&toks, "", "-", true), "-");
    assert_eq!(replace(&toks, "ab", "-", false), "-ab");
    let toks = parse_pattern("x*").unwrap();
    assert_eq!(replace(&toks, "axxbx", "-", true), "a-");
    let toks = parse_pattern("x?").unwrap();
    assert_eq!(replace(&toks, "axxbxy", "-", true), "a-b-");
}

#[test]
fn platform_release_name() {
    let release =
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
    let base = [("VERSION", "v1.2.3"), ("TARGETOS", "linux")];
    let mut env = base.to_vec();
    env.extend([("TARGETARCH", "arm"), ("TARGETVARIANT", "v7")]);
    assert_eq!(
        word(release, &env).unwrap(),
        "something-v1.2.3.linux-arm-v7.tar.gz"
    );
    let mut env = base.to_vec();
    env.extend([("TARGETARCH", "arm64"), ("TARGETVARIANT", "")]);
    assert_eq!(
        word(release, &env).unwrap(),
        "something-v1.2.3.linux-arm64.tar.gz"
    );
    let mut env = base.to_vec();
    env.push(("TARGETARCH", "arm64"));
    assert_eq!(
        word(release, &env).unwrap(),
        "something-v1.2.3.linux-arm64.tar.gz"
    );
}

#[test]
fn nested_modifiers_and_quotes() {
    assert_eq!(word("${a:-${b:-c}}", &[]).unwrap(), "c");
    assert_eq!(word("${a:-${b:-c}}", &[("b", "B")]).unwrap(), "B");
    assert_eq!(word("${a:-${b:-c}}", &[("a", "A")]).unwrap(), "A");
    assert_eq!(word("${a:-${b:-${c:-d}}}x", &[]).unwrap(), "dx");
    assert_eq!(word("${a:+[${a}]}", &[("a", "1")]).unwrap(), "[1]");
    assert_eq!(word("${a:-'}'}", &[]).unwrap(), "}");
    assert_eq!(word("${a:-\"}\"}", &[]).unwrap(), "}");
    assert_eq!(word("${a:-\\}}", &[]).unwrap(), "}");
    assert_eq!(word("${a:-'$b'}", &[("b", "B")]).unwrap(), "$b");
    assert_eq!(word("${a:-\"$b c\"}", &[("b", "B")]).unwrap(), "B c");
    assert_eq!(word("\"${a:-x y}\"", &[]).unwrap(), "x y");
    assert_eq!(word("\"${a:-\"q\"}\"", &[]).unwrap(), "q");
    assert_eq!(word("${a-}", &[]).unwrap(), "");
    assert_eq!(word("${a:-}", &[("a", "")]).unwrap(), "");
    assert_eq!(word("${a-x}", &[("a", "")]).unwrap(), "");
    assert_eq!(word("${a+x}", &[("a", "")]).unwrap(), "x");
    assert_eq!(word("${a:+x}", &[("a", "")]).unwrap(), "");
}

#[test]
fn dollar_literals_and_names() {
    assert_eq!(word("$", &[]).unwrap(), "$");
    assert_eq!(word("a$", &[]).unwrap(), "a$");
    assert_eq!(word("$ x", &[]).unwrap(), "$ x");
    assert_eq!(word("$/", &[]).unwrap(), "$/");
    assert_eq!(word("\"$\"", &[]).unwrap(), "$");
    assert_eq!(word("$A_B1", &[("A_B1", "v")]).unwrap(), "v");
    assert_eq!(word("$A-B", &[("A", "v")]).unwrap(), "v-B");
    assert_eq!(word("$_x", &[("_x", "u")]).unwrap(), "u");
    assert_eq!(word("$12", &[("12", "twelve")]).unwrap(), "twelve");
    assert_eq!(word("$1a", &[("1", "one")]).unwrap(), "onea");
    assert_eq!(word("${A}B", &[("A", "x")]).unwrap(), "xB");
    assert_eq!(word("$AB", &[("A", "x")]).unwrap(), "");
}

#[test]
fn escapes_backslash() {
    assert_eq!(word("a\\ b", &[]).unwrap(), "a b");
    assert_eq!(word("\\\"x\\\"", &[]).unwrap(), "\"x\"");
    assert_eq!(word("\"a\\\"b\"", &[]).unwrap(), "a\"b");
    assert_eq!(word("\"a\\nb\"", &[]).unwrap(), "a\\nb");
    assert_eq!(word("\"a\\`b\"", &[]).unwrap(), "a\\`b");
    assert_eq!(word("'a\\'", &[]).unwrap(), "a\\");
    assert_eq!(word("\\'", &[]).unwrap(), "'");
    assert_eq!(word("`$A`", &[("A", "x")]).unwrap(), "`x`");
}

#[test]
fn escapes_backtick() {
    let w = |input: &str, env: &[(&str, &str)]| word_with('`', input, env).map(|e| e.value);
    assert_eq!(w("a`$b", &[("b", "B")]).unwrap(), "a$b");
    assert_eq!(w("C:\\path\\$b", &[("b", "B")]).unwrap(), "C:\\path\\B");
    assert_eq!(w("\"a`\"b\"", &[]).unwrap(), "a\"b");
    assert_eq!(w("\"a`$b\"", &[]).unwrap(), "a$b");
    assert_eq!(w("\"a``b\"", &[]).unwrap(), "a`b");
    assert_eq!(w("\"a\\\"", &[]).unwrap(), "a\\");
    assert_eq!(w("\"a`xb\"", &[]).unwrap(), "a`xb");
    assert_eq!(w("a` b", &[]).unwrap(), "a b");
    assert_eq!(w("ab`", &[]).unwrap(), "ab");
    assert_eq!(w("'a`b'", &[]).unwrap(), "a`b");
    assert_eq!(w("${x:-`}}", &[]).unwrap(), "}");
    let lexer = Lexer::new('`');
    assert_eq!(lexer.escape(), '`');
    let env = |_: &str| None;
    assert_eq!(
        lexer.process_words("a` b c", &env).unwrap(),
        vec!["a b", "c"]
    );
}

#[test]
fn heredoc_markers_are_kept() {
    assert_eq!(word("cat <<EOF", &[]).unwrap(), "cat <<EOF");
    assert_eq!(word("a<b", &[]).unwrap(), "a<b");
    assert_eq!(words("cat << EOF", &[]).unwrap(), vec!["cat", "<< EOF"]);
    assert_eq!(
        words("cat <<EOF x", &[]).unwrap(),
        vec!["cat", "<<EOF", "x"]
    );
}

#[test]
fn whitespace_is_kept_by_process_word() {
    assert_eq!(word("  a   b  ", &[]).unwrap(), "  a   b  ");
    assert_eq!(word("a $X b", &[("X", " x ")]).unwrap(), "a  x  b");
}

#[test]
fn pattern_parsing() {
    use PatToken::*;
    assert_eq!(parse_pattern("a*?").unwrap(), vec![Lit('a'), Star, Any]);
    assert_eq!(
        parse_pattern("\\*\\?\\\\").unwrap(),
        vec![Lit('*'), Lit('?'), Lit('\\')]
    );
    assert_eq!(parse_pattern("\\}\\/").unwrap(), vec![Lit('}'), Lit('/')]);
    for bad in ["\\", "\\x", "\\\\\\"] {
        assert!(parse_pattern(bad).is_err(), "{bad}");
    }
}

#[test]
fn stars_do_not_cross_newlines() {
    // Go's `.` does not match a newline, and BuildKit builds a regexp.
    assert_eq!(word("${X#*b}", &[("X", "a\nb")]).unwrap(), "a\nb");
    assert_eq!(word("${X#a?b}", &[("X", "a\nb")]).unwrap(), "a\nb");
    assert_eq!(word("${X#a\nb}", &[("X", "a\nbc")]).unwrap(), "c");
}

#[test]
fn error_type() {
    let e = WordError {
        message: "m".into(),
    };
    assert_eq!(e.to_string(), "m");
    let _: &dyn std::error::Error = &e;
    assert_eq!(Lexer::default().escape(), '\\');
}
