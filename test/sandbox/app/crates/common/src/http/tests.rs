//! Request parsing tests: valid, malformed, keep-alive, limits.

use super::*;
use std::io::Cursor;

fn parse(raw: &[u8]) -> Result<Option<Request>, ParseError> {
    read_request(&mut Cursor::new(raw.to_vec()))
}

#[test]
fn parses_valid_request() {
    let req = parse(b"GET /health?x=1 HTTP/1.1\r\nHost: a\r\nX-Y:  z \r\n\r\n").unwrap().unwrap();
    assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/health"));
    assert_eq!(req.query.as_deref(), Some("x=1"));
    assert_eq!(req.header("host"), Some("a"));
    assert_eq!(req.header("x-y"), Some("z"));
    assert!(req.keep_alive());
}

#[test]
fn reads_body_and_pipelined_requests() {
    let raw =
        b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\nConnection: close\n\n";
    let mut cur = Cursor::new(raw.to_vec());
    let a = read_request(&mut cur).unwrap().unwrap();
    assert_eq!(a.body, b"abc");
    let b = read_request(&mut cur).unwrap().unwrap();
    assert_eq!(b.path, "/b");
    assert!(!b.keep_alive());
    assert_eq!(read_request(&mut cur), Ok(None));
}

#[test]
fn keep_alive_rules() {
    let ka = |raw: &[u8]| parse(raw).unwrap().unwrap().keep_alive();
    assert!(ka(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
}

#[test]
fn rejects_malformed_requests() {
    let cases: [&[u8]; 12] = [
        b"GARBAGE\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
        b"GET health HTTP/1.1\r\n\r\n",
        b"GET / HTTQ/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET / HTTP/1.1\r\nHost: a",
    ];
    for raw in cases {
        let e = parse(raw).unwrap_err();
        assert_eq!(e.status(), Some(400), "{:?} -> {e:?}", String::from_utf8_lossy(raw));
    }
    assert_eq!(parse(b"\xff\xfe / HTTP/1.1\r\n\r\n").unwrap_err().status(), Some(400));
    assert_eq!(
        parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab").unwrap_err().status(),
        Some(400)
    );
}

#[test]
fn special_statuses() {
    assert_eq!(parse(b"GET / HTTP/2.0\r\n\r\n").unwrap_err(), ParseError::Version);
    let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(parse(chunked).unwrap_err().status(), Some(501));
    let big = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
    assert_eq!(parse(big.as_bytes()).unwrap_err(), ParseError::BodyTooLarge);
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_LINE));
    assert_eq!(parse(long.as_bytes()).unwrap_err(), ParseError::HeadersTooLarge);
    let many: String = (0..=MAX_HEADERS).map(|i| format!("H{i}: v\r\n")).collect();
    let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
    assert_eq!(parse(raw.as_bytes()).unwrap_err(), ParseError::HeadersTooLarge);
}

#[test]
fn empty_stream_and_leading_blank_lines() {
    assert_eq!(parse(b""), Ok(None));
    assert_eq!(parse(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n").unwrap().unwrap().path, "/");
}
