//! Command-line entry point shared by the binaries: `serve` (default), `healthcheck`, `--version`.

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Config};
use crate::server::{self, log_line};
use crate::service::{App, Service};
use crate::signal;

/// Exit code for command-line usage and configuration errors.
pub const EXIT_USAGE: u8 = 2;
/// Timeout of the `healthcheck` subcommand.
pub const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The process arguments after the program name (lossily converted to UTF-8).
pub fn args() -> Vec<String> {
    std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect()
}

fn usage(name: &str, extra: &str) -> String {
    format!(
        "usage: {name} [serve]      run the HTTP server on 0.0.0.0:$PORT (default 8080)\n\
         \x20      {name} healthcheck  GET 127.0.0.1:$PORT/health; exit 0 if 200, else 1\n\
         \x20      {name} --version    print \"{name} $APP_RELEASE\"\n{extra}"
    )
}

/// Runs the command in `args`; `make_app` is only called when serving.
pub fn run<A: App>(
    name: &'static str,
    args: &[String],
    extra_usage: &str,
    make_app: impl FnOnce() -> A,
) -> ExitCode {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["serve"] => serve(name, make_app),
        ["healthcheck"] => healthcheck(),
        ["--version" | "-V" | "version"] => {
            println!("{name} {}", config::release());
            ExitCode::SUCCESS
        }
        ["--help" | "-h" | "help"] => {
            print!("{}", usage(name, extra_usage));
            ExitCode::SUCCESS
        }
        _ => {
            eprint!("{name}: unknown arguments {args:?}\n{}", usage(name, extra_usage));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn serve<A: App>(name: &'static str, make_app: impl FnOnce() -> A) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if !signal::install() {
        eprintln!("{name}: warning: could not install the SIGTERM/SIGINT handler");
    }
    let listener = match TcpListener::bind(("0.0.0.0", config.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{name}: cannot listen on 0.0.0.0:{}: {e}", config.port);
            return ExitCode::FAILURE;
        }
    };
    let app = make_app();
    log_line(&format!("{name} {} listening on 0.0.0.0:{}", config.release, config.port));
    if config.broken {
        log_line("APP_BROKEN is set: /health answers 500");
    }
    for line in app.describe() {
        log_line(&line);
    }
    let service = Arc::new(Service::new(name, config, app));
    let handler = Arc::new(move |req: &crate::http::Request| service.handle(req));
    match server::serve(listener, handler, &signal::SHUTDOWN) {
        Ok(()) => {
            log_line(&format!("{name} stopped"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: server error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Docker HEALTHCHECK: exit 0 if `GET /health` on 127.0.0.1:$PORT answers 200, else 1.
fn healthcheck() -> ExitCode {
    let port = match Config::from_env() {
        Ok(c) => c.port,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            return ExitCode::FAILURE;
        }
    };
    match crate::client::get("127.0.0.1", port, "/health", HEALTHCHECK_TIMEOUT) {
        Ok(r) if r.status == 200 => {
            println!("healthy: {}", r.text().trim());
            ExitCode::SUCCESS
        }
        Ok(r) => {
            println!("unhealthy: HTTP {} {}", r.status, r.text().trim());
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}
