//! `kubectl` as a subprocess, for what is simplest there (apply of multi-document YAML,
//! diagnostics, exec).

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// Runs `kubectl ARGS` against `$KUBECONFIG`; returns stdout, or fails with stderr.
pub fn kubectl(args: &[&str]) -> anyhow::Result<String> {
    run(args, None)
}

/// Like [`kubectl`], feeding `input` on stdin (e.g. `-f -`).
pub fn kubectl_with_stdin(args: &[&str], input: &str) -> anyhow::Result<String> {
    run(args, Some(input))
}

fn run(args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting kubectl (is it on PATH?)")?;
    if let Some(input) = input {
        // Dropped right after writing, so kubectl sees EOF.
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.as_bytes())
            .context("writing kubectl's stdin")?;
    }
    let out = child.wait_with_output().context("waiting for kubectl")?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
