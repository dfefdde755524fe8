#!/usr/bin/env bash
# Cluster DNS data for dnsmasq: keeps $1/services holding "<clusterIP> <svc>.<ns>.svc.cluster.local"
# for every Service, rewritten whenever the Service watch reports a change. dnsmasq rereads
# files in its hostsdir by itself. Runs as a daemon under up.sh (pidfile dns-sync).
set -euo pipefail
hostsdir=$1
kubeconfig=$2

write_hosts() {
	local tmp=$hostsdir/.services.tmp
	# Headless Services (clusterIP None) resolve to their ready endpoints' pod IPs.
	kubectl --kubeconfig "$kubeconfig" get svc,endpoints -A -o json | jq -r '
		([.items[] | select(.kind == "Service" and .spec.clusterIP != "None" and .spec.clusterIP != null and .spec.clusterIP != "")
			| "\(.spec.clusterIP) \(.metadata.name).\(.metadata.namespace).svc.cluster.local"]) as $svc
		| ([.items[] | select(.kind == "Service" and .spec.clusterIP == "None") | "\(.metadata.namespace)/\(.metadata.name)"]) as $headless
		| ([.items[] | select(.kind == "Endpoints" and ((.metadata.namespace + "/" + .metadata.name) as $k | $headless | index($k)))
			| . as $ep | (.subsets // [])[] | (.addresses // [])[]
			| "\(.ip) \($ep.metadata.name).\($ep.metadata.namespace).svc.cluster.local"]) as $hl
		| ($svc + $hl)[]' >"$tmp"
	mv "$tmp" "$hostsdir/services"
}

while true; do
	write_hosts || echo "dns-sync: listing Services failed; retrying" >&2
	# Every watch event triggers a full rewrite: Services are few, and a full list never
	# drifts. The watch ends on API server restarts and request timeouts; loop again.
	kubectl --kubeconfig "$kubeconfig" get svc -A --watch-only --no-headers --request-timeout=0 2>&1 |
		while read -r _; do
			write_hosts || echo "dns-sync: listing Services failed" >&2
		done || true
	sleep 1
done
