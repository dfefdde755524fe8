#!/usr/bin/env bash
# `make e2e`: the end-to-end suite against $KUBECONFIG, or against the embedded cluster
# (brought up here) when KUBECONFIG is unset. Builds and loads the images, builds the
# operator, then runs the flotilla-e2e tests. `e2e/run.sh chaos` (`make chaos`) runs the
# fault suite instead, without the chart tier; `e2e/run.sh rbac-audit` (`make rbac-audit`)
# holds the requests the operators of both made, from the audit log, against the chart's
# RBAC (e2e/tests/rbac_audit.rs).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=e2e/cluster/lib.sh
source "$REPO/e2e/cluster/lib.sh"
SUITE=${1:-e2e}
# Where the RBAC audit starts reading: the start of the last `make e2e`.
AUDIT_SINCE=$CLUSTER_DIR/rbac-audit-since

if [[ $SUITE == rbac-audit ]]; then
	if [[ $CLUSTER != embedded ]]; then
		log "SKIPPED: the RBAC audit reads the embedded cluster's audit log (CLUSTER=$CLUSTER)"
		exit 0
	fi
	log "RBAC audit: the operators' requests since $(cat "$AUDIT_SINCE" 2>/dev/null || echo '(no make e2e yet)') against the chart's rules"
	RBAC_AUDIT_SINCE=$AUDIT_SINCE HELM=$REPO/.tools/bin/helm \
		cargo test -p flotilla-e2e --locked --test rbac_audit -- --nocapture
	exit 0
fi

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
if [[ $SUITE != chaos ]]; then
	log "checking the Helm chart (e2e/chart/check.sh)"
	e2e/chart/check.sh
fi
export HELM=$REPO/.tools/bin/helm

log "building the operator (cargo build -p flotilla --locked)"
cargo build -p flotilla --locked
export FLOTILLA_BIN=${CARGO_TARGET_DIR:-$REPO/target}/debug/flotilla
# Every operator the tests start runs as the chart's ServiceAccount (e2e/src/identity.rs)
# and records who it was here; printed at the end, and on failure.
IDENTITIES=${CARGO_TARGET_DIR:-$REPO/target}/e2e-logs/identities.log
mkdir -p "$(dirname "$IDENTITIES")"
: >"$IDENTITIES"
show_identities() {
	log "the operators' identities ($IDENTITIES):"
	sed 's/^/    /' "$IDENTITIES"
}
trap show_identities EXIT

if [[ $SUITE == chaos ]]; then
	# Alone and one at a time: the scenarios take parts of the cluster down.
	log "running the fault suite (e2e/tests/chaos/; operator logs in target/e2e-logs/)"
	cargo test -p flotilla-e2e --locked --test chaos -- --test-threads=1 --nocapture
	log "fault suite passed"
	exit 0
fi

# Every test file of e2e/tests but chart_render, which needs no cluster and runs in
# `make unit` (as do the crate's own unit tests), crd_server, which needs the modern API
# server of `make crd-server`, and rbac_audit (`make rbac-audit`). The fault suite,
# e2e/tests/chaos/, is `make chaos`.
targets=()
for file in e2e/tests/*.rs; do
	name=$(basename "$file" .rs)
	[[ $name == chart_render || $name == rbac_audit || $name == crd_server ]] || targets+=(--test "$name")
done
mkdir -p "$CLUSTER_DIR"
date -u +%Y-%m-%dT%H:%M:%S.%6NZ >"$AUDIT_SINCE"
log "running the e2e suite (FLOTILLA_BIN=$FLOTILLA_BIN; operator logs in target/e2e-logs/)"
cargo test -p flotilla-e2e --locked "${targets[@]}" -- --test-threads=2
log "e2e suite passed"
