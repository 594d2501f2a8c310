//! Just enough RESP to health-check Redis: optional AUTH and SELECT, then PING.

use std::fmt;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::client::{connect, remaining};
use common::escape::redact;
use common::url;

const MAX_LINE: u64 = 64 * 1024;

#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    /// ACL user (Redis 6+); only used together with a password.
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = if self.password.is_some() { " (with password)" } else { "" };
        write!(f, "RedisConfig({}:{}/{}{auth})", self.host, self.port, self.db)
    }
}

impl RedisConfig {
    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    pub fn from_url(s: &str) -> Result<RedisConfig, String> {
        let u = url::parse(s).map_err(|e| format!("invalid REDIS_URL: {e}"))?;
        match u.scheme.as_str() {
            "redis" => {}
            "rediss" => return Err("rediss:// (TLS) is not supported by this client".into()),
            _ => return Err("invalid REDIS_URL: scheme must be redis://".into()),
        }
        let db = match u.path.as_str() {
            "" => 0,
            p => p.parse().map_err(|_| "invalid REDIS_URL: the path must be a database number")?,
        };
        let password = u.password.filter(|p| !p.is_empty());
        Ok(RedisConfig {
            host: u.host,
            port: u.port.unwrap_or(6379),
            username: u.user,
            password,
            db,
        })
    }
}

/// RESP array of bulk strings.
pub fn encode_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    deadline: Instant,
}

impl Conn {
    /// Sends a command and returns its reply line: Ok for `+...`, Err for anything else.
    fn call(&mut self, args: &[&str]) -> Result<String, String> {
        let io = |e: std::io::Error| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => "timed out".to_string(),
            _ => e.to_string(),
        };
        self.writer.set_write_timeout(Some(remaining(self.deadline).map_err(io)?)).map_err(io)?;
        self.writer.write_all(&encode_command(args)).map_err(io)?;
        self.reader
            .get_ref()
            .set_read_timeout(Some(remaining(self.deadline).map_err(io)?))
            .map_err(io)?;
        let mut line = Vec::new();
        (&mut self.reader).take(MAX_LINE).read_until(b'\n', &mut line).map_err(io)?;
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        match text.split_at_checked(1) {
            Some(("+", rest)) => Ok(rest.to_string()),
            Some(("-", rest)) => Err(rest.to_string()),
            _ if text.is_empty() => Err("connection closed".into()),
            _ => Err(format!("unexpected reply {text:?}")),
        }
    }
}

/// AUTH (if configured), SELECT (if db != 0) and PING, all within `timeout`.
/// Errors name the step and never contain the password.
pub fn ping(cfg: &RedisConfig, timeout: Duration) -> Result<(), String> {
    let secret = cfg.password.clone().unwrap_or_default();
    ping_inner(cfg, timeout).map_err(|e| redact(&e, &secret))
}

fn ping_inner(cfg: &RedisConfig, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let stream =
        connect(&cfg.host, cfg.port, deadline).map_err(|e| format!("cannot connect: {e}"))?;
    let writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut conn = Conn { writer, reader: BufReader::new(stream), deadline };
    if let Some(pw) = &cfg.password {
        let reply = match &cfg.username {
            Some(user) => conn.call(&["AUTH", user, pw]),
            None => conn.call(&["AUTH", pw]),
        };
        reply.map_err(|e| format!("AUTH failed: {e}"))?;
    }
    if cfg.db != 0 {
        conn.call(&["SELECT", &cfg.db.to_string()]).map_err(|e| format!("SELECT failed: {e}"))?;
    }
    match conn.call(&["PING"]) {
        Ok(pong) if pong == "PONG" => Ok(()),
        Ok(other) => Err(format!("PING answered {other:?}")),
        Err(e) => Err(format!("PING failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn parses_urls() {
        let c = RedisConfig::from_url("redis://:s%3Ac%40ret@cache:6380/2").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.db), ("cache", 6380, 2));
        assert_eq!((c.username, c.password.as_deref()), (None, Some("s:c@ret")));
        assert!(
            !format!("{:?}", RedisConfig::from_url("redis://:hunter2@h").unwrap())
                .contains("hunter2")
        );
        let c = RedisConfig::from_url("redis://cache").unwrap();
        assert_eq!((c.port, c.db, c.password), (6379, 0, None));
        assert!(RedisConfig::from_url("rediss://h").is_err());
        assert!(RedisConfig::from_url("redis://h/x").is_err());
    }

    #[test]
    fn encodes_commands() {
        assert_eq!(encode_command(&["AUTH", "pw"]), b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
    }

    /// A fake server answering each command with the next canned reply; returns what it got.
    fn fake(replies: &'static [&'static str]) -> (u16, thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut seen = Vec::new();
            for reply in replies {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let n: usize = line.trim()[1..].parse().unwrap();
                let mut args = Vec::new();
                for _ in 0..n * 2 {
                    let mut l = String::new();
                    r.read_line(&mut l).unwrap();
                    args.push(l.trim().to_string());
                }
                seen.push(args.iter().skip(1).step_by(2).cloned().collect::<Vec<_>>().join(" "));
                w.write_all(reply.as_bytes()).unwrap();
            }
            seen
        });
        (port, handle)
    }

    fn cfg(port: u16, password: Option<&str>, db: u32) -> RedisConfig {
        RedisConfig {
            host: "127.0.0.1".into(),
            port,
            username: None,
            password: password.map(Into::into),
            db,
        }
    }

    #[test]
    fn auth_select_ping_against_fake_server() {
        let (port, h) = fake(&["+OK\r\n", "+OK\r\n", "+PONG\r\n"]);
        ping(&cfg(port, Some("pw"), 3), Duration::from_secs(2)).unwrap();
        assert_eq!(h.join().unwrap(), vec!["AUTH pw", "SELECT 3", "PING"]);
    }

    #[test]
    fn auth_failure_is_reported_without_password() {
        let (port, h) = fake(&["-WRONGPASS bad pw hunter2\r\n"]);
        let e = ping(&cfg(port, Some("hunter2"), 0), Duration::from_secs(2)).unwrap_err();
        assert!(e.starts_with("AUTH failed: WRONGPASS") && !e.contains("hunter2"), "{e}");
        h.join().unwrap();
        let (port, h) = fake(&["-NOAUTH Authentication required.\r\n"]);
        let e = ping(&cfg(port, None, 0), Duration::from_secs(2)).unwrap_err();
        assert!(e.contains("NOAUTH"), "{e}");
        h.join().unwrap();
    }
}
