//! HTTP/1.1 request parsing (RFC 9112), deliberately small and strict enough for a fixture.

use std::io::{self, BufRead, Read};

pub const MAX_LINE: usize = 8 * 1024;
pub const MAX_HEADERS: usize = 100;
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: Option<String>,
    pub version: Version,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// First value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the client wants the connection kept open after this exchange.
    pub fn keep_alive(&self) -> bool {
        let has = |token: &str| {
            self.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
                .flat_map(|(_, v)| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        match self.version {
            Version::Http11 => !has("close"),
            Version::Http10 => has("keep-alive"),
        }
    }
}

/// Why a request could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Syntax error: answer 400.
    Malformed(&'static str),
    /// A line or the header section is too large: answer 431.
    HeadersTooLarge,
    /// Body above [`MAX_BODY`]: answer 413.
    BodyTooLarge,
    /// Valid but unsupported (e.g. chunked request bodies): answer 501.
    Unsupported(&'static str),
    /// HTTP version other than 1.0/1.1: answer 505.
    Version,
    /// The connection failed or timed out: nothing to answer.
    Io(io::ErrorKind),
}

impl ParseError {
    /// The status to answer with, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            ParseError::Malformed(_) => Some(400),
            ParseError::HeadersTooLarge => Some(431),
            ParseError::BodyTooLarge => Some(413),
            ParseError::Unsupported(_) => Some(501),
            ParseError::Version => Some(505),
            ParseError::Io(_) => None,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::Malformed(m) | ParseError::Unsupported(m) => m,
            ParseError::HeadersTooLarge => "header section too large",
            ParseError::BodyTooLarge => "request body too large",
            ParseError::Version => "unsupported HTTP version",
            ParseError::Io(_) => "connection error",
        }
    }
}

fn io_err(e: io::Error) -> ParseError {
    ParseError::Io(e.kind())
}

/// Reads one line (without CRLF/LF); `Ok(None)` at a clean end of stream.
fn read_line<R: BufRead>(r: &mut R) -> Result<Option<Vec<u8>>, ParseError> {
    let mut buf = Vec::new();
    let n = r.take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).map_err(io_err)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(if buf.len() > MAX_LINE {
            ParseError::HeadersTooLarge
        } else {
            ParseError::Malformed("unexpected end of stream")
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(buf))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Reads the next request. `Ok(None)` means the peer closed the connection between requests.
pub fn read_request<R: BufRead>(r: &mut R) -> Result<Option<Request>, ParseError> {
    // RFC 9112 section 2.2: ignore empty lines before the request line.
    let mut line = None;
    for _ in 0..4 {
        match read_line(r)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => {
                line = Some(l);
                break;
            }
        }
    }
    let line = line.ok_or(ParseError::Malformed("missing request line"))?;
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed("malformed request line"));
    };
    if !is_token(method) {
        return Err(ParseError::Malformed("invalid method"));
    }
    if target.first() != Some(&b'/') || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ParseError::Malformed("invalid request target"));
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        v if v.starts_with(b"HTTP/") && v.len() == 8 => return Err(ParseError::Version),
        _ => return Err(ParseError::Malformed("invalid HTTP version")),
    };
    // Both are ASCII (checked above), so these conversions cannot fail.
    let method = String::from_utf8_lossy(method).into_owned();
    let target = String::from_utf8_lossy(target).into_owned();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target, None),
    };

    let headers = read_headers(r)?;
    let mut req = Request { method, path, query, version, headers, body: Vec::new() };
    if req.header("transfer-encoding").is_some() {
        return Err(ParseError::Unsupported("transfer-encoding is not supported"));
    }
    let mut length: Option<usize> = None;
    for (_, v) in req.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::Malformed("invalid content-length"));
        }
        let n = v.parse::<usize>().map_err(|_| ParseError::BodyTooLarge)?;
        if length.is_some_and(|l| l != n) {
            return Err(ParseError::Malformed("conflicting content-length"));
        }
        length = Some(n);
    }
    if let Some(n) = length {
        if n > MAX_BODY {
            return Err(ParseError::BodyTooLarge);
        }
        req.body = vec![0; n];
        r.read_exact(&mut req.body).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => ParseError::Malformed("truncated body"),
            k => ParseError::Io(k),
        })?;
    }
    Ok(Some(req))
}

fn read_headers<R: BufRead>(r: &mut R) -> Result<Vec<(String, String)>, ParseError> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?.ok_or(ParseError::Malformed("unexpected end of headers"))?;
        if line.is_empty() {
            return Ok(headers);
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::HeadersTooLarge);
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(ParseError::Malformed("obsolete header line folding"));
        }
        let colon = line.iter().position(|&b| b == b':');
        let Some(colon) = colon else { return Err(ParseError::Malformed("header without colon")) };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if !is_token(name) {
            return Err(ParseError::Malformed("invalid header name"));
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(ParseError::Malformed("control character in header value"));
        }
        let value = String::from_utf8_lossy(value).trim_matches([' ', '\t']).to_string();
        headers.push((String::from_utf8_lossy(name).into_owned(), value));
    }
}

#[cfg(test)]
mod tests;
