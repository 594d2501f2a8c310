//! A small PostgreSQL client: protocol v3, simple Query protocol, no TLS.
//! Authentication: trust, cleartext, md5 and SCRAM-SHA-256 (with server signature check).

mod auth;
mod config;
pub mod wire;

use std::fmt;
use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub use config::PgConfig;

/// An error reported by the server (ErrorResponse).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerError {
    pub severity: String,
    /// SQLSTATE, e.g. `42P01`.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character offset into the query.
    pub position: Option<usize>,
}

impl ServerError {
    fn from_fields(body: &[u8]) -> Self {
        let mut e = ServerError::default();
        for (code, value) in wire::fields(body) {
            match code {
                b'S' => e.severity = value,
                b'C' => e.code = value,
                b'M' => e.message = value,
                b'D' => e.detail = Some(value),
                b'H' => e.hint = Some(value),
                b'P' => e.position = value.parse().ok(),
                _ => {}
            }
        }
        e
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SQLSTATE {}, {})", self.message, self.code, self.severity)?;
        if let Some(d) = &self.detail {
            write!(f, "; detail: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong; messages never contain the password.
#[derive(Debug)]
pub enum PgError {
    Io(io::Error),
    Protocol(String),
    Auth(String),
    Server(Box<ServerError>),
    Usage(String),
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgError::Io(e)
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                write!(f, "timed out")
            }
            PgError::Io(e) => write!(f, "{e}"),
            PgError::Protocol(m) => write!(f, "protocol error: {m}"),
            PgError::Auth(m) => write!(f, "authentication failed: {m}"),
            PgError::Server(e) => write!(f, "{e}"),
            PgError::Usage(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for PgError {}

impl From<io::Error> for PgError {
    fn from(e: io::Error) -> Self {
        PgError::Io(e)
    }
}

/// The result of one statement: column names, rows as text (None = NULL), command tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    pub tag: String,
}

pub struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    deadline: Option<Instant>,
    /// Transaction status from the last ReadyForQuery: b'I' idle, b'T' in a block, b'E' failed.
    tx_status: u8,
}

impl Client {
    /// Connects and authenticates; the whole handshake must finish within `timeout`.
    pub fn connect(cfg: &PgConfig, timeout: Duration) -> Result<Client, PgError> {
        let deadline = Instant::now() + timeout;
        let stream = common::client::connect(&cfg.host, cfg.port, deadline)?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        let mut client = Client {
            writer,
            reader: BufReader::new(stream),
            deadline: Some(deadline),
            tx_status: b'I',
        };
        client.send(&wire::startup(&[
            ("user", &cfg.user),
            ("database", &cfg.dbname),
            ("application_name", "fixture-api"),
            ("client_encoding", "UTF8"),
        ]))?;
        auth::authenticate(&mut client, cfg)?;
        loop {
            let msg = client.read()?;
            match msg.tag {
                b'Z' => {
                    client.tx_status = msg.body.first().copied().unwrap_or(b'I');
                    break;
                }
                b'E' => return Err(PgError::Server(Box::new(ServerError::from_fields(&msg.body)))),
                b'S' | b'K' | b'N' => {}
                t => {
                    return Err(PgError::Protocol(format!(
                        "unexpected message {:?} at startup",
                        t as char
                    )));
                }
            }
        }
        client.deadline = None;
        Ok(client)
    }

    /// Bounds every later read by `deadline` (None: wait forever).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    pub fn transaction_status(&self) -> u8 {
        self.tx_status
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), PgError> {
        let timeout = self.deadline.map(common::client::remaining).transpose()?;
        self.writer.set_write_timeout(timeout)?;
        self.writer.write_all(bytes)?;
        Ok(())
    }

    fn read(&mut self) -> Result<wire::Backend, PgError> {
        let timeout = self.deadline.map(common::client::remaining).transpose()?;
        self.reader.get_ref().set_read_timeout(timeout)?;
        Ok(wire::read_message(&mut self.reader)?)
    }

    /// Runs `sql` (one or more statements) with the simple Query protocol and returns one result
    /// per statement. On a server error, the whole message is aborted and the error returned.
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>, PgError> {
        if sql.contains('\0') {
            return Err(PgError::Usage("SQL text contains a NUL byte".into()));
        }
        self.send(&wire::query(sql))?;
        let (mut results, mut current, mut error) = (Vec::new(), None::<QueryResult>, None);
        loop {
            let msg = self.read()?;
            let mut cur = wire::Cursor::new(&msg.body);
            match msg.tag {
                b'T' => {
                    let n = cur.i16()?;
                    let mut columns = Vec::new();
                    for _ in 0..n {
                        columns.push(cur.cstr()?);
                        cur.bytes(18)?;
                    }
                    current = Some(QueryResult { columns, ..QueryResult::default() });
                }
                b'D' => {
                    let n = cur.i16()?;
                    let mut row = Vec::new();
                    for _ in 0..n {
                        let len = cur.i32()?;
                        row.push(match usize::try_from(len) {
                            Ok(len) => Some(String::from_utf8_lossy(cur.bytes(len)?).into_owned()),
                            Err(_) => None,
                        });
                    }
                    current.get_or_insert_with(QueryResult::default).rows.push(row);
                }
                b'C' => {
                    let mut r = current.take().unwrap_or_default();
                    r.tag = cur.cstr()?;
                    results.push(r);
                }
                b'E' => error = Some(ServerError::from_fields(&msg.body)),
                b'G' => {
                    self.send(&wire::copy_fail("COPY FROM STDIN is not supported by this client"))?
                }
                b'I' | b'N' | b'S' | b'A' | b'H' | b'W' | b'd' | b'c' => {}
                b'Z' => {
                    self.tx_status = msg.body.first().copied().unwrap_or(b'I');
                    break;
                }
                t => return Err(PgError::Protocol(format!("unexpected message {:?}", t as char))),
            }
        }
        match error {
            Some(e) => Err(PgError::Server(Box::new(e))),
            None => Ok(results),
        }
    }

    /// The first column of the first row of the last statement, if any.
    pub fn query_value(&mut self, sql: &str) -> Result<Option<String>, PgError> {
        let results = self.simple_query(sql)?;
        Ok(results
            .last()
            .and_then(|r| r.rows.first())
            .and_then(|row| row.first().cloned().flatten()))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.writer.set_write_timeout(Some(Duration::from_millis(500)));
        let _ = self.writer.write_all(&wire::terminate());
    }
}

/// `s` as an SQL string literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `s` as an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn server_error_display() {
        let e =
            ServerError::from_fields(b"SERROR\0C42P01\0Mrelation \"x\" does not exist\0P15\0\0");
        assert_eq!(e.position, Some(15));
        assert_eq!(e.to_string(), "relation \"x\" does not exist (SQLSTATE 42P01, ERROR)");
    }
}
