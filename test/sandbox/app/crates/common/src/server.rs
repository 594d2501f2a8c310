//! Thread-per-connection HTTP/1.1 server with keep-alive and graceful shutdown.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::http::{ParseError, read_request};
use crate::response::Response;
use crate::time::http_date;

/// How long in-flight requests may run after shutdown was requested.
pub const GRACE: Duration = Duration::from_secs(5);
/// Idle keep-alive connections are closed after this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Once a request has started arriving it must be complete within this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often idle loops look at the shutdown flag.
const POLL: Duration = Duration::from_millis(100);
const MAX_CONNECTIONS: usize = 512;

pub type Handler = dyn Fn(&crate::http::Request) -> Response + Send + Sync;

struct Shared {
    handler: Arc<Handler>,
    stop: &'static AtomicBool,
    in_flight: AtomicUsize,
    connections: AtomicUsize,
}

/// Decrements a counter when dropped.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(c: &'a AtomicUsize) -> Self {
        c.fetch_add(1, Ordering::SeqCst);
        Counted(c)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Writes one line to stdout, ignoring errors (a closed stdout must not kill the server).
pub fn log_line(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Serves until `stop` becomes true, then stops accepting, waits up to [`GRACE`] for in-flight
/// requests, and returns.
pub fn serve(
    listener: TcpListener,
    handler: Arc<Handler>,
    stop: &'static AtomicBool,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let shared = Arc::new(Shared {
        handler,
        stop,
        in_flight: AtomicUsize::new(0),
        connections: AtomicUsize::new(0),
    });
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if shared.connections.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                    continue; // dropping the stream closes it
                }
                let s = Arc::clone(&shared);
                let spawned = thread::Builder::new().name("conn".into()).spawn(move || {
                    let _guard = Counted::new(&s.connections);
                    handle_connection(stream, &s);
                });
                if let Err(e) = spawned {
                    log_line(&format!("cannot spawn connection thread: {e}"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log_line(&format!("accept failed: {e}"));
                thread::sleep(POLL);
            }
        }
    }
    drop(listener);
    let deadline = Instant::now() + GRACE;
    let pending = shared.in_flight.load(Ordering::SeqCst);
    if pending > 0 {
        log_line(&format!("waiting for {pending} in-flight request(s)"));
    }
    while shared.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn handle_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut idle_since = Instant::now();
    loop {
        if !wait_for_data(&mut reader, shared.stop, idle_since) {
            return;
        }
        let in_flight = Counted::new(&shared.in_flight);
        let _ = reader.get_ref().set_read_timeout(Some(REQUEST_TIMEOUT));
        let start = Instant::now();
        let keep_alive = match read_request(&mut reader) {
            Ok(None) | Err(ParseError::Io(_)) => false,
            Ok(Some(req)) => {
                let resp = (shared.handler)(&req);
                let keep = req.keep_alive() && !shared.stop.load(Ordering::SeqCst);
                let bytes =
                    resp.to_bytes(req.method == "HEAD", keep, &http_date(SystemTime::now()));
                let written = writer.write_all(&bytes).is_ok();
                log_request(&req.method, &req.path, resp.status, start);
                written && keep
            }
            Err(e) => {
                let status = e.status().unwrap_or(400);
                let resp = Response::error(status, e.reason());
                let _ =
                    writer.write_all(&resp.to_bytes(false, false, &http_date(SystemTime::now())));
                log_request("-", "-", status, start);
                false
            }
        };
        drop(in_flight);
        if !keep_alive {
            close_gracefully(&writer, &mut reader);
            return;
        }
        idle_since = Instant::now();
    }
}

/// Waits for the first byte of the next request; false means close the connection.
fn wait_for_data(
    reader: &mut BufReader<TcpStream>,
    stop: &AtomicBool,
    idle_since: Instant,
) -> bool {
    let _ = reader.get_ref().set_read_timeout(Some(POLL));
    loop {
        match reader.fill_buf() {
            Ok(buf) => return !buf.is_empty(),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if stop.load(Ordering::SeqCst) || idle_since.elapsed() > IDLE_TIMEOUT {
                    return false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Half-closes and drains briefly so the peer receives the response instead of a reset.
fn close_gracefully(writer: &TcpStream, reader: &mut BufReader<TcpStream>) {
    let _ = writer.shutdown(Shutdown::Write);
    let _ = reader.get_ref().set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn log_request(method: &str, path: &str, status: u16, start: Instant) {
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    log_line(&format!("{method} {path} {status} {ms:.1}ms"));
}
