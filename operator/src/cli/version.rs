//! `flotilla version`: the version, as `--version` prints it.

use std::process::ExitCode;

use super::write_stdout;

pub(super) fn command() -> ExitCode {
    write_stdout(&format!("flotilla {}\n", env!("CARGO_PKG_VERSION")))
}
