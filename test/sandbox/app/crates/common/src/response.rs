//! HTTP responses and their serialisation.

use crate::escape::json_str;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response { status, content_type, headers: Vec::new(), body: body.into() }
    }

    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "application/json", body.into())
    }

    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body.into())
    }

    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/html; charset=utf-8", body.into())
    }

    /// `{"error":"<message>","status":<status>}` with that status.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, format!("{{\"error\":{},\"status\":{status}}}", json_str(message)))
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Whether this status may carry a body at all (RFC 9110: not 1xx, 204, 304).
    fn has_body(&self) -> bool {
        !(self.status < 200 || self.status == 204 || self.status == 304)
    }

    /// Serialises the response; `head_only` omits the body (HEAD requests) but keeps its length.
    pub fn to_bytes(&self, head_only: bool, keep_alive: bool, date: &str) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        head.push_str(&format!("Date: {date}\r\n"));
        if self.has_body() {
            head.push_str(&format!("Content-Type: {}\r\n", self.content_type));
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("Cache-Control: no-store\r\n");
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        let mut out = head.into_bytes();
        if self.has_body() && !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(r: &Response, head: bool, ka: bool) -> String {
        String::from_utf8(r.to_bytes(head, ka, "Thu, 01 Jan 1970 00:00:00 GMT")).unwrap()
    }

    #[test]
    fn serialises_with_correct_length() {
        let r = Response::json(200, "{\"a\":\"é\"}").with_header("X-Test", "1");
        let s = render(&r, false, true);
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(s.contains("Content-Length: 10\r\n"), "{s}");
        assert!(s.contains("Content-Type: application/json\r\n"));
        assert!(s.contains("X-Test: 1\r\n"));
        assert!(s.contains("Connection: keep-alive\r\n\r\n"));
        assert!(s.ends_with("{\"a\":\"é\"}"));
    }

    #[test]
    fn head_and_bodyless_statuses() {
        let r = Response::text(200, "v1\n");
        let s = render(&r, true, false);
        assert!(s.contains("Content-Length: 3\r\n") && s.ends_with("Connection: close\r\n\r\n"));
        let s = render(&Response::text(204, "ignored"), false, true);
        assert!(!s.contains("Content-Length") && s.ends_with("\r\n\r\n"));
    }

    #[test]
    fn error_body_is_json() {
        let r = Response::error(503, "injected \"fault\"");
        assert_eq!(r.body, b"{\"error\":\"injected \\\"fault\\\"\",\"status\":503}");
        assert_eq!(reason(503), "Service Unavailable");
        assert_eq!(reason(599), "Unknown");
    }
}
