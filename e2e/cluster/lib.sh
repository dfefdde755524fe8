# shellcheck shell=bash disable=SC2034 # variables are used by the scripts sourcing this
# Shared helpers for the embedded-cluster scripts: paths, progress lines, failure output.
# Sourced, never run.

K8S_VERSION=1.20.2
K8S_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
CLUSTER=${CLUSTER:-embedded}
CLUSTER_DIR=${CLUSTER_DIR:-$HOME/.cache/flotilla/cluster}
# Built binaries live outside the repo and outside the run dir, keyed by version, so
# `make cluster-down` or a fresh clone never forces the ten-minute rebuild.
K8S_CACHE=${K8S_CACHE:-$HOME/.cache/flotilla/kubernetes/$K8S_VERSION}
K8S_BIN=$K8S_CACHE/bin
KIND_NAME=flotilla

# Network layout: everything on this machine. The bridge gateway doubles as the host IP
# pods use for cluster DNS.
POD_CIDR=10.244.0.0/24
BRIDGE=flotilla0
HOST_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
ETCD_CLIENT_PORT=12379
ETCD_PEER_PORT=12380
APISERVER_PORT=16443
NODE_NAME=flotilla-node

CONTAINERD_SOCK=$CLUSTER_DIR/containerd/containerd.sock
PAUSE_IMAGE=flotilla.local/pause:$K8S_VERSION
KUBECONFIG_PATH=$CLUSTER_DIR/kubeconfig

SCRIPT_START=${SCRIPT_START:-$(date +%s)}
export SCRIPT_START

log() { printf '[%4ss] %s\n' "$(($(date +%s) - SCRIPT_START))" "$*"; }

die() {
	log "ERROR: $*" >&2
	exit 1
}

# Prints the end of a log file, for failures: the reason is nearly always there.
show_tail() {
	local file=$1 lines=${2:-40}
	if [[ -f $file ]]; then
		echo "----- last $lines lines of $file -----" >&2
		tail -n "$lines" "$file" >&2
		echo "-----" >&2
	fi
}

# Runs a command with its output in a log file; on failure shows the log's tail and exits.
run_logged() {
	local logfile=$1
	shift
	if ! "$@" >>"$logfile" 2>&1; then
		show_tail "$logfile" 60
		die "failed: $* (full log: $logfile)"
	fi
}

# run_with_heartbeat LOGFILE WHAT CMD...: runs a long command with its output in LOGFILE,
# printing a progress line every 30s instead of minutes of silence; on failure shows the
# log's tail and exits.
run_with_heartbeat() {
	local _hb_log=$1 _hb_label=$2
	shift 2
	# Locals carry a prefix: the command runs in this function's scope (bash scoping is
	# dynamic), so a plain name such as `what` would shadow the caller's variable.
	"$@" >>"$_hb_log" 2>&1 &
	local _hb_pid=$! _hb_waited=0
	while kill -0 "$_hb_pid" 2>/dev/null; do
		sleep 1
		_hb_waited=$((_hb_waited + 1))
		if ((_hb_waited % 30 == 0)) && kill -0 "$_hb_pid" 2>/dev/null; then
			log "  still $_hb_label … (last: $(tail -n1 "$_hb_log" | cut -c1-90))"
		fi
	done
	if ! wait "$_hb_pid"; then
		show_tail "$_hb_log" 60
		die "$_hb_label failed (full log: $_hb_log)"
	fi
}

# apt_install PACKAGE...: installs Debian packages quietly (through sudo when not root),
# refreshing the package lists once if the first try fails.
apt_install() {
	local sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null ||
		{ "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null; }
}

need_root() {
	[[ $(id -u) -eq 0 ]] || die "the embedded cluster needs root (namespaces, iptables, mounts)"
}

# Polls a command until it succeeds or the deadline (seconds) passes.
wait_until() {
	local what=$1 deadline=$2
	shift 2
	local end=$(($(date +%s) + deadline))
	until "$@" >/dev/null 2>&1; do
		if (($(date +%s) >= end)); then
			log "timed out after ${deadline}s waiting for: $what"
			return 1
		fi
		sleep 1
	done
}

pid_alive() {
	local pidfile=$CLUSTER_DIR/run/$1.pid
	[[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

kc() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }
