#!/usr/bin/env bash
# Stops and starts one component of the embedded cluster, for the fault suite:
#   component.sh stop NAME        kill it (SIGKILL: no goodbye to its clients), keeping
#                                 its command line in run/NAME.cmdline
#   component.sh start NAME       start it again with that command line, record its pid
#                                 (so `make cluster-down` stops it) and wait until healthy
#   component.sh outage NAME SECS stop, keep it down SECS seconds, start
#   component.sh compact         compact etcd's history up to its current revision (every
#                                 older resource version is gone: watches resuming from one
#                                 get 410 Gone); prints the revision
# NAME is a process of e2e/cluster/up.sh: kube-apiserver, etcd, kube-controller-manager…
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
source "$REPO/e2e/cluster/lib.sh"
RUN=$CLUSTER_DIR/run
LOGS=$CLUSTER_DIR/logs

action=${1:?usage: component.sh stop|start|outage NAME [SECONDS] | compact}
if [[ $action == compact ]]; then
	# etcd's JSON gateway: no etcdctl needed.
	etcd_url=http://127.0.0.1:$ETCD_CLIENT_PORT/v3/kv
	revision=$(curl -fsS -X POST "$etcd_url/range" -d '{"key":"Lw=="}' | jq -r .header.revision)
	[[ $revision =~ ^[0-9]+$ ]] || die "could not read etcd's revision"
	curl -fsS -X POST "$etcd_url/compaction" -d "{\"revision\":\"$revision\",\"physical\":true}" >/dev/null
	log "etcd compacted at revision $revision"
	echo "$revision"
	exit 0
fi
name=${2:?usage: component.sh stop|start|outage NAME [SECONDS]}

stop() {
	local pid
	pid=$(cat "$RUN/$name.pid")
	kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) is not running"
	# NUL-separated arguments, kept as they are for the restart.
	cp "/proc/$pid/cmdline" "$RUN/$name.cmdline"
	kill -9 "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	log "$name stopped (was pid $pid)"
}

start() {
	[[ -s $RUN/$name.cmdline ]] || die "no saved command line for $name: stop it first"
	local -a argv
	mapfile -d '' -t argv <"$RUN/$name.cmdline"
	setsid "${argv[@]}" >>"$LOGS/$name.log" 2>&1 </dev/null &
	echo $! >"$RUN/$name.pid"
	if [[ $name == kube-apiserver ]]; then
		local end=$(($(date +%s) + 90))
		until kubectl --kubeconfig "$CLUSTER_DIR/kubeconfig" get --raw /readyz >/dev/null 2>&1; do
			(($(date +%s) < end)) || die "kube-apiserver not ready 90 s after its restart (log: $LOGS/$name.log)"
			sleep 0.2
		done
	fi
	log "$name started (pid $!)"
}

case $action in
stop) stop ;;
start) start ;;
outage)
	stop
	sleep "${3:?outage needs SECONDS}"
	start
	;;
*) die "unknown action $action" ;;
esac
