use super::*;

#[test]
fn byte_ranges() {
    assert_eq!(parse_byte_range("bytes=0-9", 100), Some((0, 9)));
    assert_eq!(parse_byte_range("bytes=90-", 100), Some((90, 99)));
    assert_eq!(parse_byte_range("bytes=-10", 100), Some((90, 99)));
    assert_eq!(parse_byte_range("bytes=50-500", 100), Some((50, 99)));
    assert_eq!(parse_byte_range("bytes=100-", 100), None);
    assert_eq!(parse_byte_range("bytes=5-1", 100), None);
    assert_eq!(parse_byte_range("items=0-1", 100), None);
}

#[test]
fn queries_decode() {
    let q = parse_query(Some("scope=repository%3Aa%2Fb%3Apull&scope=x&n=10&last="));
    assert_eq!(
        q.all("scope").collect::<Vec<_>>(),
        ["repository:a/b:pull", "x"]
    );
    assert_eq!(q.get("n"), Some("10"));
    assert_eq!(q.get("last"), Some(""));
    assert_eq!(urldecode("a%2"), "a%2");
}

#[test]
fn pages_follow_last_and_n() {
    let all: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let q = parse_query(Some("n=2"));
    assert_eq!(
        paginate(all.clone(), &q).unwrap(),
        (vec!["a".into(), "b".into()], Some("b".into()))
    );
    let q = parse_query(Some("n=2&last=b"));
    assert_eq!(
        paginate(all.clone(), &q).unwrap(),
        (vec!["c".into(), "d".into()], None)
    );
    let q = parse_query(Some("n=0"));
    assert_eq!(paginate(all, &q).unwrap(), (vec![], None));
}
