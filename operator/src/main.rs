//! The `flotilla` binary; every command is in `flotilla::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    flotilla::cli::main()
}
