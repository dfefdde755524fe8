//! `flotilla crd`: the CRDs as YAML, for the server version asked.

use std::process::ExitCode;

use super::{CrdArgs, write_stdout};
use crate::api::crds_yaml;

pub(super) fn command(args: CrdArgs) -> ExitCode {
    write_stdout(&crds_yaml(args.kube_version))
}
