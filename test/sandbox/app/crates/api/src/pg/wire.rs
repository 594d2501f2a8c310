//! PostgreSQL frontend/backend protocol v3 message framing.

use std::io::{self, Read};

use super::PgError;

/// Backend messages larger than this are treated as a protocol error.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

fn push_cstr(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

/// A tagged frontend message: tag, Int32 length (including itself), body.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// StartupMessage for protocol 3.0 with the given parameters.
pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608i32.to_be_bytes().to_vec();
    for (k, v) in params {
        push_cstr(&mut body, k);
        push_cstr(&mut body, v);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// PasswordMessage (cleartext or md5).
pub fn password(pw: &str) -> Vec<u8> {
    let mut body = Vec::new();
    push_cstr(&mut body, pw);
    message(b'p', &body)
}

pub fn sasl_initial_response(mechanism: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    push_cstr(&mut body, mechanism);
    body.extend_from_slice(&(data.len() as i32).to_be_bytes());
    body.extend_from_slice(data);
    message(b'p', &body)
}

pub fn sasl_response(data: &[u8]) -> Vec<u8> {
    message(b'p', data)
}

/// Simple-protocol Query; the caller must have rejected NUL bytes.
pub fn query(sql: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(sql.len() + 1);
    push_cstr(&mut body, sql);
    message(b'Q', &body)
}

pub fn copy_fail(reason: &str) -> Vec<u8> {
    let mut body = Vec::new();
    push_cstr(&mut body, reason);
    message(b'f', &body)
}

pub fn terminate() -> Vec<u8> {
    message(b'X', &[])
}

/// One backend message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub tag: u8,
    pub body: Vec<u8>,
}

pub fn read_message<R: Read>(r: &mut R) -> io::Result<Backend> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head)?;
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let len = usize::try_from(len).ok().filter(|l| (4..=MAX_MESSAGE).contains(l));
    let len =
        len.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "invalid message length"))?;
    let mut body = vec![0u8; len - 4];
    r.read_exact(&mut body)?;
    Ok(Backend { tag: head[0], body })
}

/// Reads fields out of a message body.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn short() -> PgError {
    PgError::Protocol("message shorter than its fields".into())
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], PgError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(short)?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn i16(&mut self) -> Result<i16, PgError> {
        let b = self.bytes(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Result<i32, PgError> {
        let b = self.bytes(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NUL-terminated string (lossily decoded).
    pub fn cstr(&mut self) -> Result<String, PgError> {
        let rest = &self.buf[self.pos..];
        let nul = rest.iter().position(|&b| b == 0).ok_or_else(short)?;
        self.pos += nul + 1;
        Ok(String::from_utf8_lossy(&rest[..nul]).into_owned())
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }
}

/// Fields of an ErrorResponse/NoticeResponse as (code, value) pairs.
pub fn fields(body: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    let mut cur = Cursor::new(body);
    while let Ok(code) = cur.bytes(1) {
        if code[0] == 0 {
            break;
        }
        match cur.cstr() {
            Ok(v) => out.push((code[0], v)),
            Err(_) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_frontend_messages() {
        assert_eq!(query("SELECT 1"), b"Q\0\0\0\x0dSELECT 1\0");
        assert_eq!(terminate(), b"X\0\0\0\x04");
        let s = startup(&[("user", "u")]);
        assert_eq!(&s[..8], &[0, 0, 0, 16, 0, 3, 0, 0]);
        assert_eq!(&s[8..], b"user\0u\0\0");
        let sasl = sasl_initial_response("M", b"ab");
        assert_eq!(sasl, b"p\0\0\0\x0cM\0\0\0\0\x02ab");
    }

    #[test]
    fn reads_backend_messages_and_fields() {
        let raw = b"Z\0\0\0\x05IE\0\0\0\x22SERROR\0C42P01\0Mno such table\0\0".to_vec();
        let mut r = &raw[..];
        assert_eq!(read_message(&mut r).unwrap(), Backend { tag: b'Z', body: b"I".to_vec() });
        let e = read_message(&mut r).unwrap();
        assert_eq!(e.tag, b'E');
        let f = fields(&e.body);
        assert_eq!(
            f,
            vec![(b'S', "ERROR".into()), (b'C', "42P01".into()), (b'M', "no such table".into())]
        );
        assert!(read_message(&mut &b"Z\0\0\0\x02"[..]).is_err());
        assert!(read_message(&mut &b"Z\0\0"[..]).is_err());
    }

    #[test]
    fn cursor_bounds() {
        let mut c = Cursor::new(b"\0\x01abc\0\xff");
        assert_eq!(c.i16().unwrap(), 1);
        assert_eq!(c.cstr().unwrap(), "abc");
        assert!(c.i32().is_err());
        assert_eq!(c.rest(), b"\xff");
        assert!(c.cstr().is_err());
    }
}
