//! Helpers for integration tests that run the real binaries (used by the crates' `tests/`).

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{self, HttpResponse};

/// Variables the services read; cleared so the caller's environment cannot leak into a test.
const SERVICE_VARS: [&str; 9] = [
    "PORT",
    "APP_RELEASE",
    "APP_BROKEN",
    "APP_FAULT_FILE",
    "DATABASE_URL",
    "DATABASE_URL_FILE",
    "REDIS_URL",
    "REDIS_URL_FILE",
    "MIGRATIONS_DIR",
];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique path in the temp dir (not created).
pub fn temp_path(prefix: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()))
}

/// A currently free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A `Command` for `bin` with the service variables cleared and `env` set.
pub fn command(bin: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin);
    for var in SERVICE_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A service binary running `serve` on a free port, logging to a temp file.
pub struct ServerProcess {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    /// The fault file this instance reads (unique per instance, initially absent).
    pub fault_file: PathBuf,
}

impl ServerProcess {
    /// Starts `bin` and waits until `GET /version` answers 200.
    pub fn start(bin: &str, env: &[(&str, &str)]) -> ServerProcess {
        let port = free_port();
        let log = temp_path("fixture-log");
        let fault_file = temp_path("fixture-fault");
        let out = File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let (port_s, fault_s) = (port.to_string(), fault_file.display().to_string());
        let mut all: Vec<(&str, &str)> = vec![("PORT", &port_s), ("APP_FAULT_FILE", &fault_s)];
        all.extend_from_slice(env);
        let child = command(bin, &all)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn server");
        let server = ServerProcess { child, port, log, fault_file };
        // A loaded machine (other suites beside this one) can take a while to start a process.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if server.try_get("/version").is_ok_and(|r| r.status == 200) {
                return server;
            }
            assert!(Instant::now() < deadline, "server did not start; log:\n{}", server.logs());
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn try_get(&self, path: &str) -> std::io::Result<HttpResponse> {
        client::get("127.0.0.1", self.port, path, Duration::from_secs(10))
    }

    /// `GET path`, panicking on transport errors.
    pub fn get(&self, path: &str) -> HttpResponse {
        self.try_get(path).unwrap_or_else(|e| panic!("GET {path}: {e}; log:\n{}", self.logs()))
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (up to 10 s) for the exit; returns the status and time taken.
    pub fn terminate(&mut self) -> (ExitStatus, Duration) {
        let start = Instant::now();
        assert!(crate::signal::send_sigterm(self.child.id()), "kill(SIGTERM) failed");
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for server") {
                return (status, start.elapsed());
            }
            assert!(start.elapsed() < Duration::from_secs(10), "server ignored SIGTERM");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.fault_file);
    }
}
