#!/usr/bin/env bash
# The chart's static tier, part of `make test` (`make unit` runs it `--offline`,
# e2e/run.sh in full) and `make chart-check`: `helm lint --strict`, the schema rejecting a
# typo, and a rendering per values file in charts/flotilla/ci/ checked by the live API
# server with a server-side dry run (needs KUBECONFIG). With `--offline` the dry runs are
# skipped. The chart's CRD copies are checked by operator/tests/crd_drift.rs.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
source "$REPO/e2e/cluster/lib.sh"
CHART=$REPO/charts/flotilla
OFFLINE=false
[[ ${1:-} == --offline ]] && OFFLINE=true

"$REPO/e2e/chart/tools.sh"
HELM=$REPO/.tools/bin/helm

# Linted for a current server: on 1.20 the chart must use the deprecated policy/v1beta1
# PDB, which --strict would fail on (the dry runs below cover the cluster's version).
LINT_KUBE_VERSION=1.35.0
log "chart: helm lint --strict (each ci values file, Kubernetes $LINT_KUBE_VERSION)"
for values in "$CHART"/ci/*-values.yaml; do
	"$HELM" lint --strict --quiet --kube-version "$LINT_KUBE_VERSION" "$CHART" -f "$values" >/dev/null ||
		{ "$HELM" lint --strict --kube-version "$LINT_KUBE_VERSION" "$CHART" -f "$values"; die "helm lint failed with $values"; }
done

log "chart: a misspelt value fails with the schema's message"
if out=$("$HELM" template flotilla "$CHART" --set replicaz=2 2>&1); then
	die "helm template --set replicaz=2 succeeded: the schema does not reject unknown keys"
fi
grep -q "additional properties 'replicaz' not allowed" <<<"$out" ||
	die "helm template --set replicaz=2 failed without the schema's message: $out"

log "chart: a lease too short to renew safely is refused by the schema"
if out=$("$HELM" template flotilla "$CHART" --set replicas=2 --set leaderElection.leaseDurationSeconds=2 2>&1); then
	die "helm template with leaseDurationSeconds=2 succeeded: the schema lets a lease that cannot be renewed safely through"
fi
grep -q "leaseDurationSeconds" <<<"$out" ||
	die "leaseDurationSeconds=2 failed without naming the value: $out"

if $OFFLINE; then
	for values in "$CHART"/ci/*-values.yaml; do
		"$HELM" template flotilla "$CHART" -f "$values" >/dev/null || die "rendering with $values failed"
	done
	log "chart: offline checks passed (no dry runs)"
	exit 0
fi

[[ -n ${KUBECONFIG:-} ]] || die "KUBECONFIG is unset: the dry runs need a cluster (or pass --offline)"
server=$(kubectl version -o json | jq -r .serverVersion.gitVersion)
# The server's API versions, so the rendering picks what it serves (policy/v1beta1 on 1.20).
api_args=()
while read -r v; do api_args+=(--api-versions "$v"); done < <(kubectl api-versions)
has_servicemonitor=false
kubectl api-versions | grep -qx monitoring.coreos.com/v1 && has_servicemonitor=true

ns=flotilla-chart-check-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
kubectl create namespace "$ns" >/dev/null
kubectl label namespace "$ns" flotilla-e2e=true >/dev/null
trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT

for values in "$CHART"/ci/*-values.yaml; do
	name=$(basename "$values" -values.yaml)
	out=$REPO/target/chart-check/$name.yaml
	mkdir -p "$(dirname "$out")"
	"$HELM" template flotilla "$CHART" -n "$ns" -f "$values" --kube-version "$server" "${api_args[@]}" >"$out" ||
		die "rendering with $values failed"
	docs=$out
	if ! $has_servicemonitor; then
		# The server has no ServiceMonitor CRD and no test installs one (it is cluster-wide
		# and shared): those documents are checked by the Rust render test instead.
		docs=$out.dry-run
		awk 'BEGIN { RS = "\n---\n"; ORS = "\n---\n" } !/\nkind: ServiceMonitor\n/' "$out" >"$docs"
	fi
	kinds=$(grep -E '^kind: ' "$docs" | awk '{print $2}' | sort | uniq -c | awk '{printf "%s%s×%s", sep, $2, $1; sep=", "}')
	# The field manager of helm's own server-side apply. Forced: the cluster's CRDs may
	# have been applied by kubectl from another commit (an earlier run on the same
	# cluster), and a conflict on them says nothing about this rendering; the dry run
	# changes nothing either way.
	if ! result=$(kubectl apply --server-side --dry-run=server --force-conflicts --field-manager=helm -n "$ns" -f "$docs" 2>&1); then
		echo "$result" >&2
		die "server-side dry run of the $name rendering failed ($out)"
	fi
	log "chart: $name renders and passes the server-side dry run on $server ($kinds)"
done
log "chart: static checks passed"
