#!/usr/bin/env bash
# `make bench-cluster [N=500]`: the operator against kubectl on a real cluster (issue 13):
# $KUBECONFIG, or the embedded cluster (brought up here) when unset. Builds the operator
# in release mode and runs e2e/src/bin/bench_cluster/main.rs, which prints the table,
# writes target/bench-cluster.json and exits non-zero when a target is missed.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=e2e/cluster/lib.sh
source "$REPO/e2e/cluster/lib.sh"
N=${1:-500}

if [[ -z ${KUBECONFIG:-} ]]; then
	log "KUBECONFIG unset: bringing up the $CLUSTER cluster (make cluster)"
	make --no-print-directory cluster
	export KUBECONFIG=$KUBECONFIG_PATH
fi
log "cluster: KUBECONFIG=$KUBECONFIG"
# No `make images`: the node is cordoned during the bench, so no pod ever pulls one.

log "building the operator and the bench (release)"
cargo build --release -p flotilla --locked
cargo build --release -p flotilla-e2e --bin bench_cluster --locked
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
export FLOTILLA_BIN=$TARGET/release/flotilla
log "running the bench with N=$N (operator log in $TARGET/e2e-logs/)"
"$TARGET/release/bench_cluster" "$N"
