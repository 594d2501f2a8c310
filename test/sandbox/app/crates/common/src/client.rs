//! Minimal blocking HTTP/1.1 client (one request per connection), used by the `healthcheck`
//! subcommand and by tests. Also hosts the deadline-aware TCP connect shared by the DB clients.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const MAX_RESPONSE: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Time left until `deadline`, or a `TimedOut` error if it has passed.
pub fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
    } else {
        Ok(left)
    }
}

/// Resolves `host:port` and connects to the first address that answers before `deadline`.
pub fn connect(host: &str, port: u16, deadline: Instant) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host name resolved to no address");
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// `GET path` from `host:port` with `Connection: close`, all within `timeout`.
pub fn get(host: &str, port: u16, path: &str, timeout: Duration) -> io::Result<HttpResponse> {
    request(host, port, "GET", path, &[], timeout)
}

pub fn request(
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> io::Result<HttpResponse> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(host, port, deadline)?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if raw.len() + n > MAX_RESPONSE => return Err(invalid("response too large")),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
            }
            Err(e) => return Err(e),
        }
    }
    parse_response(&raw, method == "HEAD")
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Parses a complete response read until end of stream.
pub fn parse_response(raw: &[u8], head: bool) -> io::Result<HttpResponse> {
    let split =
        raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| invalid("no header end"))?;
    let head_text = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(invalid("malformed status line"));
    };
    let status = match code.parse::<u16>() {
        Ok(s) if version.starts_with("HTTP/1.") && (100..=999).contains(&s) => s,
        _ => return Err(invalid("malformed status line")),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let resp = HttpResponse { status, headers, body: Vec::new() };
    if let Some(len) = resp.header("content-length") {
        let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
        if head {
            body.clear();
        } else if body.len() < len {
            return Err(invalid("truncated body"));
        } else {
            body.truncate(len);
        }
    }
    Ok(HttpResponse { body, ..resp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_response() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}extra";
        let r = parse_response(raw, false).unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.body, b"{}");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", false).is_err());
        assert!(parse_response(b"garbage\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n", false).is_err());
    }

    #[test]
    fn connect_refused_and_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(get("127.0.0.1", port, "/", Duration::from_secs(1)).is_err());
        assert!(remaining(Instant::now()).is_err());
    }
}
