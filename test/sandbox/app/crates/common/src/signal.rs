//! SIGTERM/SIGINT handling without libc bindings: a handler that only sets an atomic flag.
//! Needed because the services run as PID 1 in containers, where the kernel ignores SIGTERM
//! unless a handler is installed.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once SIGTERM or SIGINT has been received.
pub static SHUTDOWN: AtomicBool = AtomicBool::new(false);

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
const SIG_ERR: usize = usize::MAX;

unsafe extern "C" {
    /// glibc's `signal(2)` (BSD semantics: the handler stays installed, syscalls restart).
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
}

extern "C" fn on_signal(_signum: i32) {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGTERM and SIGINT; returns false if the kernel refused.
pub fn install() -> bool {
    // SAFETY: `on_signal` only performs an atomic store, which is async-signal-safe, and the
    // signal numbers are valid on Linux (x86_64 and aarch64 share them).
    let results = unsafe { [signal(SIGTERM, on_signal), signal(SIGINT, on_signal)] };
    results.iter().all(|&r| r != SIG_ERR)
}

/// Whether a shutdown signal has arrived.
pub fn requested() -> bool {
    SHUTDOWN.load(Ordering::SeqCst)
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Sends SIGTERM to `pid` (used by tests and tooling); false if the kernel refused.
pub fn send_sigterm(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    // SAFETY: kill(2) has no memory-safety preconditions; a positive pid targets one process.
    pid > 0 && unsafe { kill(pid, SIGTERM) } == 0
}
