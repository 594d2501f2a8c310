//! `saas`: fixture stand-in for the product's saas web service (see the workspace README).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = common::cli::args();
    common::cli::run("saas", &args, "", || common::service::NoExtras)
}
