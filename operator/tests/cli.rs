//! The `flotilla` binary at the head of a shell pipeline: a reader that stops early
//! (`flotilla crd | head -1`) ends the command quietly, with status 0.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};

/// What a Linux pipe holds by default. The output must be well beyond it, so the writer
/// is still writing when the reader goes away and meets EPIPE; a smaller output would
/// fit in the pipe and prove nothing.
const PIPE_BUFFER: usize = 64 * 1024;

fn flotilla(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    command.args(args);
    command
}

/// Starts `command` with piped stdio and feeds it `stdin`, closed at once: the commands
/// read stdin to its end before they write.
fn spawn_with_input(mut command: Command, stdin: &str) -> Child {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flotilla starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child
}

/// Runs `command` with `stdin`, reads the first line of its output and closes the pipe,
/// as `head -1` does; returns how the command ended and its stderr.
fn first_line_then_close(command: Command, stdin: &str) -> (String, Output) {
    let mut child = spawn_with_input(command, stdin);
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here, closing the pipe while flotilla still writes.
    (first, child.wait_with_output().expect("flotilla ends"))
}

fn assert_quiet_success(command: &str, first: &str, output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{command} | head -1 ended with {}: {stderr}",
        output.status
    );
    assert!(
        stderr.is_empty(),
        "{command} | head -1 wrote to stderr: {stderr}"
    );
    assert!(!first.is_empty(), "{command} printed nothing");
}

fn output_len(command: Command, stdin: &str) -> usize {
    let output = spawn_with_input(command, stdin)
        .wait_with_output()
        .expect("flotilla ends");
    assert!(output.status.success(), "{}", output.status);
    output.stdout.len()
}

#[test]
fn crd_into_a_closed_pipe_ends_quietly() {
    let len = output_len(flotilla(&["crd"]), "");
    assert!(len > 2 * PIPE_BUFFER, "crd prints only {len} bytes");
    let (first, output) = first_line_then_close(flotilla(&["crd"]), "");
    assert_quiet_success("flotilla crd", &first, &output);
}

/// The graph fixture, copied into as many pairs of namespaces as it takes to render more
/// than a pipe holds: one copy renders about 12 KB, and a Microservice may appear in the
/// input only once.
fn many_graphs() -> String {
    let path = format!("{}/tests/fixtures/graph.yaml", env!("CARGO_MANIFEST_DIR"));
    let graph = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    (0..32)
        .map(|i| {
            graph
                .replace("namespace: shop", &format!("namespace: shop-{i}"))
                .replace("namespace: web", &format!("namespace: web-{i}"))
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[test]
fn render_into_a_closed_pipe_ends_quietly() {
    let input = many_graphs();
    let len = output_len(flotilla(&["render", "-f", "-"]), &input);
    assert!(len > 2 * PIPE_BUFFER, "render prints only {len} bytes");
    let (first, output) = first_line_then_close(flotilla(&["render", "-f", "-"]), &input);
    assert_quiet_success("flotilla render", &first, &output);
}

#[test]
fn a_lease_too_short_to_renew_safely_is_refused_before_anything_runs() {
    let output = flotilla(&["run", "--leader-elect", "--lease-duration-seconds", "2"])
        .output()
        .expect("flotilla starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--lease-duration-seconds"), "{stderr}");
}
