#!/usr/bin/env bash
# `make cluster-down`: stops everything `make cluster` started (by pidfile), the pods'
# containers and shims, and the network leftovers, and the PostgreSQL of
# e2e/cluster/postgres.sh; then resets the run dir (logs kept in logs.prev/) so the next
# `make cluster` starts a fresh cluster.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=e2e/cluster/lib.sh
source "$HERE/lib.sh"
# shellcheck source=e2e/cluster/oci.sh
source "$HERE/oci.sh"

RUN=$CLUSTER_DIR/run

# alive PID: running and not a zombie (our daemons are reparented to an init that may
# reap them late).
alive() {
	kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

# stop NAME: SIGTERM, then SIGKILL after a grace period, by pidfile.
stop() {
	local name=$1 pidfile=$RUN/$1.pid pid
	[[ -f $pidfile ]] || return 0
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		log "stopping $name (pid $pid)"
		# Each daemon leads its own session (setsid): signal the whole group, so children
		# such as dns-sync's kubectl watch go too.
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true

		for _ in $(seq 1 50); do
			alive "$pid" || break
			sleep 0.2
		done
		if alive "$pid"; then
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$pidfile"
}

# Kills every container task in the CRI namespace, and remembers their network namespaces
# (bind mounts under /run/netns that outlive the tasks).
stop_pods() {
	[[ -S $CONTAINERD_SOCK ]] || return 0
	ctr_k8s version >/dev/null 2>&1 || return 0
	local ids id
	ids=$(ctr_k8s containers ls -q 2>/dev/null || true)
	[[ -n $ids ]] || return 0
	log "killing pod containers"
	for id in $ids; do
		ctr_k8s containers info "$id" 2>/dev/null |
			jq -r '.Spec.linux.namespaces[]? | select(.type == "network") | .path // empty' >>"$RUN/netns" || true
		ctr_k8s tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
	done
	for id in $ids; do
		ctr_k8s tasks delete -f "$id" >/dev/null 2>&1 || true
		ctr_k8s containers delete "$id" >/dev/null 2>&1 || true
	done
}

cleanup_network() {
	local ns
	if [[ -f $RUN/netns ]]; then
		sort -u "$RUN/netns" | while read -r ns; do
			[[ $ns == /var/run/netns/* || $ns == /run/netns/* ]] || continue
			umount "$ns" 2>/dev/null || true
			rm -f "$ns"
		done
		rm -f "$RUN/netns"
	fi
	if [[ -x $K8S_BIN/kube-proxy ]]; then
		"$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
	fi
	# The bridge plugin's masquerade chains for our network ("flotilla"), left behind
	# because killed sandboxes never got a CNI DEL.
	local chain
	for chain in $(iptables -t nat -S POSTROUTING 2>/dev/null | grep -F 'name: \"flotilla\"' | grep -o 'CNI-[0-9a-f]*' | sort -u); do
		{ iptables -t nat -S POSTROUTING | grep -F -- "-j $chain" || true; } | sed 's/^-A/-D/' |
			while read -r rule; do eval "iptables -t nat $rule" || true; done
		iptables -t nat -F "$chain" 2>/dev/null || true
		iptables -t nat -X "$chain" 2>/dev/null || true
	done
	# What kube-proxy --cleanup leaves: the kubelet's own KUBE-* chains (firewall, canaries,
	# mark chains). Only this cluster's Kubernetes runs on the machine.
	local table rule
	for table in filter nat mangle; do
		{ iptables -t "$table" -S 2>/dev/null || true; } |
			{ grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-' || true; } |
			sed 's/^-A/-D/' | while read -r rule; do eval "iptables -t $table $rule" || true; done
		for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
			iptables -t "$table" -F "$chain" 2>/dev/null || true
		done
		for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
			iptables -t "$table" -X "$chain" 2>/dev/null || true
		done
	done
	ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
	if ip link show "$BRIDGE" >/dev/null 2>&1; then
		log "deleting bridge $BRIDGE"
		ip link del "$BRIDGE"
	fi
}

unmount_run_dir() {
	# Volume tmpfs mounts of the kubelet and containerd's overlay and shm mounts.
	local m
	{ findmnt -rn -o TARGET | grep -F "$CLUSTER_DIR/" || true; } | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}

main() {
	# The shop's database on this machine, which `make demo` and the e2e suite start.
	"$HERE/postgres.sh" down
	if [[ $CLUSTER == kind ]]; then
		kind delete cluster --name "$KIND_NAME"
		rm -f "$KUBECONFIG_PATH"
		return
	fi
	need_root
	[[ -d $CLUSTER_DIR ]] || {
		log "nothing to stop ($CLUSTER_DIR absent)"
		return
	}
	mkdir -p "$RUN"
	stop dns-sync
	stop dnsmasq
	stop kube-proxy
	stop kubelet
	stop_pods
	stop kube-scheduler
	stop kube-controller-manager
	stop kube-apiserver
	stop etcd
	stop containerd
	cleanup_network
	unmount_run_dir
	log "resetting $CLUSTER_DIR (logs kept in $CLUSTER_DIR/logs.prev)"
	rm -rf "$CLUSTER_DIR/logs.prev"
	[[ -d $CLUSTER_DIR/logs ]] && mv "$CLUSTER_DIR/logs" "$CLUSTER_DIR/logs.prev"
	find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 ! -name logs.prev -exec rm -rf {} +
	log "cluster stopped"
}

main "$@"
