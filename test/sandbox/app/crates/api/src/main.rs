//! `api`: fixture stand-in for the product's API service (see the workspace README).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = common::cli::args();
    if args.first().map(String::as_str) == Some("migrate") {
        return api::migrate::main(&args[1..]);
    }
    common::cli::run("api", &args, api::migrate::USAGE, api::app::ApiApp::from_env)
}
