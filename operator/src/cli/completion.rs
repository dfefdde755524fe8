//! Shell completion, generated from the clap definition so that it always matches the
//! commands: `flotilla completion SHELL` prints a script for the `flotilla` command, and
//! run as `kubectl_complete-flotilla` the binary answers kubectl's plugin completion.
//!
//! A script cannot complete `kubectl flotilla`: it would register itself for `kubectl`
//! and replace kubectl's own completion. kubectl (1.26+) instead completes the words after
//! a plugin's name by running `kubectl_complete-<plugin>` with those words, the last one
//! being the word under the cursor, and reads Cobra's answer: one candidate per line, then
//! `:<directive>`.

use std::process::ExitCode;

use clap::Command;

use super::{CompletionArgs, cli_command, command_name, write_stdout};

/// The name kubectl runs for the plugin's completions (`make install` links it).
pub(super) const KUBECTL_COMPLETER: &str = "kubectl_complete-flotilla";

/// Cobra's `ShellCompDirectiveNoFileComp`: offer no file names when no candidate matches.
const NO_FILE_COMPLETION: u8 = 4;

pub(super) fn command(args: CompletionArgs) -> ExitCode {
    if command_name() != "flotilla" {
        eprintln!(
            "error: kubectl completes its plugins itself (kubectl 1.26+): put a link named \
             {KUBECTL_COMPLETER} to this binary on the PATH (make install does). For the \
             flotilla command itself, run `flotilla completion {:?}`.",
            args.shell
        );
        return ExitCode::from(2);
    }
    let mut command = cli_command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, command_name(), &mut script);
    write_stdout(&String::from_utf8_lossy(&script))
}

/// Answers kubectl's plugin completion for `words` (those after `kubectl flotilla`).
pub(super) fn kubectl_plugin(words: Vec<String>) -> ExitCode {
    let root = cli_command();
    let mut answer = candidates(&root, &words).join("\n");
    if !answer.is_empty() {
        answer.push('\n');
    }
    answer.push_str(&format!(":{NO_FILE_COMPLETION}\n"));
    write_stdout(&answer)
}

/// The subcommands, or with a leading `-` the long flags, of the deepest command the
/// complete words name, that start with the word being typed.
fn candidates(root: &Command, words: &[String]) -> Vec<String> {
    let (typing, done) = match words.split_last() {
        Some((last, rest)) => (last.as_str(), rest),
        None => ("", &[][..]),
    };
    let mut command = root;
    for word in done {
        if let Some(sub) = command.find_subcommand(word) {
            command = sub;
        }
    }
    if typing.starts_with('-') {
        command
            .get_arguments()
            .filter(|arg| !arg.is_hide_set())
            .filter_map(|arg| arg.get_long())
            .chain(["help"])
            .map(|long| format!("--{long}"))
            .filter(|flag| flag.starts_with(typing))
            .collect()
    } else {
        command
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
            .map(|sub| sub.get_name().to_owned())
            .filter(|name| name.starts_with(typing))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(words: &[&str]) -> Vec<String> {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        candidates(&cli_command(), &words)
    }

    #[test]
    fn completes_commands_subcommands_and_flags() {
        assert_eq!(complete(&["sta"]), ["status"]);
        assert!(complete(&[""]).contains(&"rollout".to_owned()));
        let rollout = complete(&["rollout", ""]);
        for action in ["status", "promote", "abort"] {
            assert!(rollout.contains(&action.to_owned()), "{rollout:?}");
        }
        let flags = complete(&["status", "users", "--n"]);
        assert_eq!(flags, ["--namespace"]);
        assert!(complete(&["status", "--"]).contains(&"--context".to_owned()));
        assert!(complete(&["nothing-like-it"]).is_empty());
    }
}
