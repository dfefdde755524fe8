//! `flotilla completion SHELL`: the shell completion script, generated from the clap
//! definition so that it always matches the commands.

use std::process::ExitCode;

use super::{CompletionArgs, cli_command, command_name, write_stdout};

pub(super) fn command(args: CompletionArgs) -> ExitCode {
    let mut command = cli_command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, command_name(), &mut script);
    write_stdout(&String::from_utf8_lossy(&script))
}
