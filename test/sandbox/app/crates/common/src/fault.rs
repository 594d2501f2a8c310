//! Fault injection, read from a file at each request so tests can flip it with `docker exec`.
//!
//! The file holds whitespace-separated `key=value` tokens:
//! `status=503` answers every request with that status; `delay_ms=2500` sleeps before answering;
//! `panic=1` makes the handler of every request but /health panic, with a message naming the path, as
//! an application bug that echoes its input would (one connection thread dies; the server goes on and
//! the container stays healthy).
//! Unknown or invalid tokens are ignored; a missing or empty file means no fault.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Longest delay honoured, so a typo cannot park a connection forever.
pub const MAX_DELAY_MS: u64 = 120_000;
const MAX_FILE_BYTES: u64 = 4096;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Status to answer with (200..=599).
    pub status: Option<u16>,
    /// Delay before answering.
    pub delay_ms: u64,
    /// Panic in the handler.
    pub panic: bool,
}

impl Fault {
    pub fn is_none(&self) -> bool {
        self.status.is_none() && self.delay_ms == 0 && !self.panic
    }
}

pub fn parse(content: &str) -> Fault {
    let mut fault = Fault::default();
    for token in content.split_whitespace() {
        match token.split_once('=') {
            Some(("status", v)) => {
                if let Ok(s) = v.parse::<u16>()
                    && (200..=599).contains(&s)
                {
                    fault.status = Some(s);
                }
            }
            Some(("delay_ms", v)) => {
                if let Ok(d) = v.parse::<u64>() {
                    fault.delay_ms = d.min(MAX_DELAY_MS);
                }
            }
            Some(("panic", v)) => fault.panic = matches!(v, "1" | "true" | "yes" | "on"),
            _ => {}
        }
    }
    fault
}

/// Reads the fault file; any error (typically: it does not exist) means no fault.
pub fn load(path: Option<&Path>) -> Fault {
    let Some(path) = path else { return Fault::default() };
    let mut content = String::new();
    match File::open(path) {
        Ok(f) if (&f).take(MAX_FILE_BYTES).read_to_string(&mut content).is_ok() => parse(&content),
        _ => Fault::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tokens() {
        assert_eq!(parse("status=503"), Fault { status: Some(503), delay_ms: 0, panic: false });
        assert_eq!(parse("delay_ms=2500\n"), Fault { status: None, delay_ms: 2500, panic: false });
        assert_eq!(
            parse("  status=500\tdelay_ms=10 \n"),
            Fault { status: Some(500), delay_ms: 10, panic: false }
        );
    }

    #[test]
    fn empty_and_garbage_mean_no_fault() {
        assert!(parse("").is_none());
        assert!(parse(" \n\t").is_none());
        assert!(parse("status=abc delay_ms=-5 status=99 status=600 foo=bar junk").is_none());
        assert!(parse("STATUS=503").is_none());
    }

    #[test]
    fn parses_panic() {
        assert!(parse("panic=1").panic);
        assert!(parse("delay_ms=5 panic=true").panic);
        assert!(!parse("panic=0").panic);
        assert!(!parse("panic=1").is_none() && parse("panic=no").is_none());
    }

    #[test]
    fn clamps_delay_and_last_token_wins() {
        assert_eq!(parse("delay_ms=999999999").delay_ms, MAX_DELAY_MS);
        assert_eq!(parse("status=500 status=502").status, Some(502));
    }

    #[test]
    fn load_handles_missing_and_present_files() {
        assert!(load(None).is_none());
        assert!(load(Some(Path::new("/nonexistent/fault/file"))).is_none());
        let path = std::env::temp_dir().join(format!("fault-test-{}", std::process::id()));
        std::fs::write(&path, "status=503 delay_ms=1").unwrap();
        assert_eq!(load(Some(&path)), Fault { status: Some(503), delay_ms: 1, panic: false });
        std::fs::write(&path, "").unwrap();
        assert!(load(Some(&path)).is_none());
        std::fs::remove_file(&path).unwrap();
    }
}
