//! `site`: fixture stand-in for the product's site web service (see the workspace README).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = common::cli::args();
    common::cli::run("site", &args, "", || common::service::NoExtras)
}
