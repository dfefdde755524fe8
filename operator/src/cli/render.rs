//! `flotilla render -f FILE`: the children Flotilla would apply, offline, and the reading
//! of the `-f` files the file-taking commands share. The rendering itself is the
//! library's (`crate::render`), shared with the tests and benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{RenderArgs, write_stdout};
use crate::builders::{Capabilities, http_route, service_monitor};

pub(super) fn command(args: RenderArgs) -> ExitCode {
    let mut capabilities = Capabilities::for_version(args.kube_version);
    if args.gateway_api {
        capabilities = capabilities.with_served(&http_route::KIND, "v1");
    }
    if args.prometheus_operator {
        capabilities = capabilities.with_served(&service_monitor::KIND, "v1");
    }
    let rendered = read_documents(&args.files).and_then(|documents| {
        crate::render::render_for(&documents, &capabilities).map_err(|e| e.to_string())
    });
    match rendered {
        Ok(rendered) => {
            for warning in &rendered.warnings {
                eprintln!("warning: {warning}");
            }
            write_stdout(&rendered.yaml)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The text of each file, `-` being stdin.
pub(super) fn read_documents(files: &[PathBuf]) -> Result<Vec<String>, String> {
    files
        .iter()
        .map(|file| {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(file)
            };
            text.map_err(|e| format!("reading {}: {e}", file.display()))
        })
        .collect()
}
