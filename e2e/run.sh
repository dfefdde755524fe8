#!/usr/bin/env bash
# `make e2e`: the end-to-end suite against $KUBECONFIG, or against the embedded cluster
# (brought up here) when KUBECONFIG is unset. Builds and loads the images, builds the
# operator, then runs the flotilla-e2e tests.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=e2e/cluster/lib.sh
source "$REPO/e2e/cluster/lib.sh"

if [[ -z ${KUBECONFIG:-} ]]; then
	log "KUBECONFIG unset: bringing up the $CLUSTER cluster (make cluster)"
	make --no-print-directory cluster
	export KUBECONFIG=$KUBECONFIG_PATH
fi
log "cluster: KUBECONFIG=$KUBECONFIG"
kubectl version -o json 2>/dev/null | jq -r '"server version: " + .serverVersion.gitVersion' ||
	die "the cluster at $KUBECONFIG does not answer"

log "building and loading images (make images)"
make --no-print-directory images

# The chart tier: lint, schema, renderings and server-side dry runs; the chart's
# end-to-end tests (e2e/tests/chart.rs) then run with the others below.
log "checking the Helm chart (e2e/chart/check.sh)"
e2e/chart/check.sh
export HELM=$REPO/.tools/bin/helm

log "building the operator (cargo build -p flotilla --locked)"
cargo build -p flotilla --locked
export FLOTILLA_BIN=${CARGO_TARGET_DIR:-$REPO/target}/debug/flotilla

# Every test target of e2e/tests but chart_render, which needs no cluster and runs in
# `make unit` (as do the crate's own unit tests).
targets=()
for file in e2e/tests/*.rs; do
	name=$(basename "$file" .rs)
	[[ $name == chart_render ]] || targets+=(--test "$name")
done
log "running the e2e suite (FLOTILLA_BIN=$FLOTILLA_BIN; operator logs in target/e2e-logs/)"
cargo test -p flotilla-e2e --locked "${targets[@]}" -- --test-threads=2
log "e2e suite passed"
