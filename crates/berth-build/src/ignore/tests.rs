//! Tests of [`super`].
use super::*;

fn rules(text: &str) -> IgnoreRules {
    IgnoreRules::parse(text).unwrap_or_else(|e| panic!("parse {text:?}: {e}"))
}

fn one(pattern: &str, path: &str) -> bool {
    rules(pattern).excluded(path)
}

/// Checks (pattern, path, excluded) rows, one pattern at a time.
fn table(cases: &[(&str, &str, bool)]) {
    for &(pattern, path, want) in cases {
        assert_eq!(
            one(pattern, path),
            want,
            "pattern {pattern:?} path {path:?}"
        );
    }
}

#[test]
fn clean_like_go() {
    for (input, want) in [
        ("", "."),
        (".", "."),
        ("./", "."),
        ("/", "/"),
        ("//", "/"),
        ("a/", "a"),
        ("./a", "a"),
        ("a//b", "a/b"),
        ("a/./b", "a/b"),
        ("a/../b", "b"),
        ("a/..", "."),
        ("../a", "../a"),
        ("../../a/..", "../.."),
        ("/../a", "/a"),
        ("/a/b/../../..", "/"),
        ("**/", "**"),
        ("!foo/../bar", "bar"),
    ] {
        assert_eq!(clean(input), want, "clean({input:?})");
    }
}

#[test]
fn reading_rules() {
    let text =
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n";
    let r = rules(text);
    let texts: Vec<(bool, &str)> = r
        .patterns
        .iter()
        .map(|p| (p.exception, p.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        vec![
            (false, "test1"),
            (false, "test2"),
            (false, "a/file/here"),
            (false, "lastfile"),
            (true, "inverted/abs/path"),
        ]
    );
    assert!(!r.is_empty());
}

#[test]
fn empty_and_comment_only() {
    assert!(rules("").is_empty());
    assert!(rules("\n\n   \n# c\n#another\n").is_empty());
    assert!(!rules("").excluded("anything"));
}

#[test]
fn comments_only_at_column_zero() {
    // Docker checks for `#` before trimming, so an indented `#` is a pattern.
    let r = rules("  # not a comment");
    assert!(!r.is_empty());
    assert!(r.excluded("# not a comment"));
    assert!(rules("#foo").is_empty());
    assert!(!rules("#foo\n").excluded("#foo"));
}

#[test]
fn bom_crlf_and_whitespace() {
    let r = rules("\u{feff}foo\r\n  bar  \r\n\t!baz\t\r\n");
    assert!(r.excluded("foo"));
    assert!(r.excluded("bar"));
    assert!(!r.excluded("baz"));
    assert_eq!(r.patterns.len(), 3);
}

#[test]
fn leading_slash_and_cleaning() {
    assert!(one("/foo", "foo"));
    assert!(one("/foo/bar", "foo/bar"));
    assert!(one("foo/", "foo/x"));
    assert!(one("./foo", "foo"));
    assert!(one("foo//bar/", "foo/bar"));
    assert!(one("foo/../bar", "bar"));
    assert!(!one("foo/../bar", "foo"));
    let r = rules("*\n! /keep");
    assert!(!r.excluded("keep"));
    assert!(r.excluded("other"));
}

#[test]
fn dot_and_root_patterns_match_nothing() {
    for pattern in [".", "./", "/", "//"] {
        let r = rules(pattern);
        assert!(!r.is_empty());
        assert!(!r.excluded("foo"), "{pattern}");
        assert!(!r.excluded("foo/bar"), "{pattern}");
    }
    // The root itself is never excluded.
    assert!(!rules("**").excluded("."));
    assert!(!rules("*").excluded(""));
}

#[test]
fn docs_example_star_slash_temp() {
    let r = rules("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
    assert!(r.excluded("somedir/temporary.txt"));
    assert!(r.excluded("somedir/temp"));
    assert!(r.excluded("somedir/temp/inner/file"));
    assert!(r.excluded("somedir/subdir/temporary.txt"));
    assert!(r.excluded("tempa"));
    assert!(r.excluded("tempb"));
    assert!(!r.excluded("temp"));
    assert!(!r.excluded("tempab"));
    assert!(!r.excluded("temporary.txt"));
    assert!(!r.excluded("a/b/c/temporary.txt"));
    assert!(!r.excluded("comment"));
    assert!(!r.excluded("# comment"));
}

#[test]
fn docs_example_double_star_go() {
    let r = rules("**/*.go");
    assert!(r.excluded("main.go"));
    assert!(r.excluded("a/main.go"));
    assert!(r.excluded("a/b/c/main.go"));
    assert!(!r.excluded("main.go.txt"));
    assert!(!r.excluded("a/main.rs"));
}

#[test]
fn docs_example_markdown_exceptions() {
    let r = rules("*.md\n!README.md");
    assert!(r.excluded("CHANGELOG.md"));
    assert!(!r.excluded("README.md"));
    // `*` does not cross directories.
    assert!(!r.excluded("docs/guide.md"));

    let r = rules("*.md\n!README*.md\nREADME-secret.md");
    assert!(r.excluded("CHANGELOG.md"));
    assert!(!r.excluded("README.md"));
    assert!(!r.excluded("README-public.md"));
    assert!(r.excluded("README-secret.md"));

    let r = rules("*.md\nREADME-secret.md\n!README*.md");
    assert!(r.excluded("CHANGELOG.md"));
    assert!(!r.excluded("README.md"));
    assert!(!r.excluded("README-secret.md"));
}

#[test]
fn parent_directory_matching() {
    let r = rules("node_modules");
    assert!(r.excluded("node_modules"));
    assert!(r.excluded("node_modules/x"));
    assert!(r.excluded("node_modules/x/y"));
    assert!(!r.excluded("src/node_modules"));
    assert!(!r.excluded("node_modules2"));

    let r = rules("docs\n!docs/README.md");
    assert!(r.excluded("docs/other.md"));
    assert!(!r.excluded("docs/README.md"));

    let r = rules("docs/*\n!docs/README.md");
    assert!(!r.excluded("docs/README.md"));
    assert!(r.excluded("docs/a/b"));
    assert!(!r.excluded("docs"));

    // An exception for a directory re-includes everything below it.
    let r = rules("**\n!src");
    assert!(!r.excluded("src/main.rs"));
    assert!(r.excluded("target/debug"));

    let r = rules("**\n!util/docker/web");
    assert!(!r.excluded("util/docker/web/foo"));
    let r = rules("**\n!util/docker/web\nutil/docker/web/foo");
    assert!(r.excluded("util/docker/web/foo"));
    assert!(r.excluded("util/docker/web/foo/bar"));
    assert!(!r.excluded("util/docker/web/bar"));
}

#[test]
fn order_matters() {
    assert!(rules("!fileutils.go\n*.go").excluded("fileutils.go"));
    assert!(!rules("*.go\n!fileutils.go").excluded("fileutils.go"));
    assert!(rules("*.go\n!fileutils.go\nfileutils.go").excluded("fileutils.go"));
}

#[test]
fn path_normalisation() {
    let r = rules("foo/bar");
    assert!(r.excluded("./foo/bar"));
    assert!(r.excluded("/foo/bar"));
    assert!(r.excluded("foo//bar"));
    assert!(r.excluded("foo/bar/"));
}

/// Single-pattern cases from patternmatcher's own test table.
#[test]
fn patternmatcher_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "file/", true),
        ("**/", "file", true),
        ("**/", "file/", true),
        ("**", "dir/file", true),
        ("**/", "dir/file", true),
        ("**/**", "dir/file", true),
        ("**/**", "dir/file/", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/dir2/file", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**/file", "dir/file", true),
        ("**file", "dir/dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/file*.txt", "dir/dir/file.txt", true),
        ("**/file*.txt*", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc.def", "abcZdef", false),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("a\\\\", "a\\", true),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def", true),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        ("a\\*b", "a*b", true),
        ("a\\*b", "axb", false),
    ];
    table(cases);
}

/// Cases adapted from Go's filepath.Match tests (as used by patternmatcher).
#[test]
fn go_match_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("abc", "abc", true),
        ("*", "abc", true),
        ("*c", "abc", true),
        ("a*", "a", true),
        ("a*", "abc", true),
        ("a*", "ab/c", true), // parent "ab" matches
        ("a*/b", "abc/b", true),
        ("a*/b", "a/c/b", false),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
        ("a*b?c*x", "abxbbxdbxebxczzx", true),
        ("a*b?c*x", "abxbbxdbxebxczzy", false),
        ("ab[c]", "abc", true),
        ("ab[b-d]", "abc", true),
        ("ab[e-g]", "abc", false),
        ("ab[^c]", "abc", false),
        ("ab[^b-d]", "abc", false),
        ("ab[^e-g]", "abc", true),
        ("a\\*b", "ab", false),
        ("a?b", "a☺b", true),
        ("a[^a]b", "a☺b", true),
        ("a???b", "a☺b", false),
        ("a[^a][^a][^a]b", "a☺b", false),
        ("[a-ζ]*", "α", true),
        ("*[a-ζ]", "A", false),
        ("a?b", "a/b", false),
        ("a*b", "a/b", false),
        ("[\\]a]", "]", true),
        ("[\\-]", "-", true),
        ("[x\\-]", "x", true),
        ("[x\\-]", "-", true),
        ("[x\\-]", "z", false),
        ("[\\-x]", "x", true),
        ("[\\-x]", "-", true),
        ("[\\-x]", "a", false),
        ("*x", "xxx", true),
    ];
    table(cases);
}

#[test]
fn character_classes_and_escapes() {
    assert!(one("file[0-9].txt", "file3.txt"));
    assert!(!one("file[0-9].txt", "filex.txt"));
    assert!(one("file[^0-9].txt", "filex.txt"));
    assert!(!one("file[^0-9].txt", "file3.txt"));
    assert!(one("[abc]", "b"));
    assert!(!one("[abc]", "d"));
    assert!(one("[a-cx-z]", "y"));
    // Go's filepath.Match only negates with `^`; `!` is an ordinary member.
    assert!(one("[!a]", "!"));
    assert!(one("[!a]", "a"));
    assert!(!one("[!a]", "b"));
    // Escapes make wildcards literal.
    assert!(one("\\?", "?"));
    assert!(!one("\\?", "x"));
    assert!(one("\\[a]", "[a]"));
    assert!(one("x\\]", "x]"));
    assert!(one("a]", "a]"));
    assert!(one("\\!keep", "!keep"));
    assert!(one("[*]", "*"));
    assert!(!one("[*]", "x"));
}

#[test]
fn double_star_positions() {
    // start
    assert!(one("**/foo", "foo"));
    assert!(one("**/foo", "a/b/foo"));
    assert!(one("**/foo", "a/b/foo/c"));
    assert!(!one("**/foo", "a/bfoo"));
    // middle
    assert!(one("a/**/b", "a/b"));
    assert!(one("a/**/b", "a/x/b"));
    assert!(one("a/**/b", "a/x/y/z/b"));
    assert!(one("a/**/b", "a/x/b/c"));
    assert!(!one("a/**/b", "a/xb"));
    assert!(!one("a/**/b", "x/a/b"));
    // end
    assert!(one("a/**", "a/b"));
    assert!(one("a/**", "a/b/c"));
    assert!(!one("a/**", "a"));
    assert!(one("a**", "abc/d"));
    assert!(one("a*/**", "ab/c"));
    assert!(!one("a*/**", "ab"));
    // everything
    assert!(one("**", "x"));
    assert!(one("**", "x/y/z"));
    assert!(one("**/*", "x/y"));
    // `**` not followed by `/` in the middle only matches whole segments.
    assert!(one("a**b", "ab"));
    assert!(one("a**b", "ax/b"));
    assert!(!one("a**b", "axb"));
    // `**` followed by literal text only: plain suffix test.
    assert!(one("**file", "dirfile"));
    // Mixed wildcards after a leading `**`.
    assert!(one("**/*.go", "x.go"));
    assert!(one("**/src/**/*.rs", "src/lib.rs"));
    assert!(one("**/src/**/*.rs", "a/src/b/c/lib.rs"));
    assert!(!one("**/src/**/*.rs", "a/src/b/c/lib.go"));
}

#[test]
fn caret_outside_class_is_a_start_anchor() {
    // patternmatcher copies `^` into its regexp unescaped: with other
    // wildcards it anchors at the start; in a literal pattern it is literal.
    assert!(one("a^b", "a^b"));
    assert!(!one("a^b*", "a^bc"));
    assert!(one("^a*", "abc"));
    assert!(one("*^*", "anything"));
}

#[test]
fn star_does_not_cross_slash() {
    assert!(one("*/temp", "a/temp"));
    assert!(!one("*/temp", "a/b/temp"));
    assert!(!one("*.txt", "dir/a.txt"));
    assert!(one("*", "dir/a.txt"));
}

#[test]
fn bad_patterns() {
    for (text, line) in [
        ("[", 1),
        ("ok\n\n[abc", 3),
        ("a[", 1),
        ("[]", 1),
        ("[^]", 1),
        ("[]a]", 1),
        ("[-a]", 1),
        ("[a-]", 1),
        ("[a", 1),
        ("[a-", 1),
        ("[a-b", 1),
        ("[\\", 1),
        ("[x-a]", 1),
        ("a\\", 1),
        ("# comment\nfoo\n!", 3),
        ("! ", 1),
        ("!/", 1),
        ("!   \n", 1),
        ("foo\n![", 2),
    ] {
        let err = IgnoreRules::parse(text).expect_err(text);
        assert_eq!(err.line, line, "{text:?}: {err}");
        assert!(err.to_string().contains(&format!("line {line}")));
    }
    let err = IgnoreRules::parse("ok\n  [abc  ").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.message.contains("\"[abc\""), "{}", err.message);
    let err = IgnoreRules::parse("!").unwrap_err();
    assert!(err.message.contains("illegal exclusion pattern"));
}

#[test]
fn exception_dot_is_allowed() {
    let r = rules("*\n!.");
    assert!(r.excluded("foo"));
}

#[test]
fn must_descend_rules() {
    // No exceptions at all: never.
    let r = rules("node_modules\nbuild");
    assert!(!r.must_descend("node_modules"));

    // Literal exception below the directory.
    let r = rules("docs\n!docs/README.md");
    assert!(r.must_descend("docs"));
    assert!(!r.must_descend("other"));
    assert!(!r.must_descend("doc"));
    assert!(!r.must_descend("docs/README.md/x"));

    // Exception naming the directory itself.
    let r = rules("build\n!build");
    assert!(r.must_descend("build"));

    // Deeper exception: every ancestor must be walked.
    let r = rules("a\n!a/b/c/d");
    assert!(r.must_descend("a"));
    assert!(r.must_descend("a/b"));
    assert!(r.must_descend("a/b/c"));
    assert!(!r.must_descend("a/c"));

    // Trailing glob is ignored for the prefix test.
    let r = rules("vendor\n!vendor/keep/**");
    assert!(r.must_descend("vendor"));
    assert!(r.must_descend("vendor/keep"));
    assert!(!r.must_descend("vendor/drop"));
    let r = rules("vendor\n!vendor/*");
    assert!(r.must_descend("vendor"));

    // Any exception with wildcards: always descend.
    let r = rules("**\n!**/*.go");
    assert!(r.must_descend("anything"));
    let r = rules("x\n!a/[bc]");
    assert!(r.must_descend("zzz"));
}

#[test]
fn error_display() {
    let e = IgnoreError {
        line: 4,
        message: "bad".into(),
    };
    assert_eq!(e.to_string(), ".dockerignore line 4: bad");
    let _: &dyn std::error::Error = &e;
}

#[test]
fn non_ascii_and_long_paths() {
    assert!(one("안녕*", "안녕하세요"));
    assert!(one("?", "é"));
    let deep = "a/".repeat(200) + "x.go";
    assert!(one("**/*.go", &deep));
    assert!(!one("**/*.rs", &deep));
    // Many wildcards must not blow up.
    let long = "a".repeat(60);
    assert!(!one("*a*a*a*a*a*a*a*a*a*a*b", &long));
}
