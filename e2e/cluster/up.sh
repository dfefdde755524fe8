#!/usr/bin/env bash
# `make cluster`: brings up a single-node Kubernetes 1.20 cluster on this machine without
# Docker (CLUSTER=embedded, the default), or a kind cluster (CLUSTER=kind). Idempotent:
# a healthy cluster makes this a fast no-op. Prints the KUBECONFIG to use.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=e2e/cluster/lib.sh
source "$HERE/lib.sh"
# shellcheck source=e2e/cluster/pki.sh
source "$HERE/pki.sh"
# shellcheck source=e2e/cluster/oci.sh
source "$HERE/oci.sh"

RUN=$CLUSTER_DIR/run
LOGS=$CLUSTER_DIR/logs
DNS_DIR=$CLUSTER_DIR/dns
PROBE_NS=flotilla-probe

kind_up() {
	command -v kind >/dev/null || die "kind is not installed (https://kind.sigs.k8s.io)"
	mkdir -p "$CLUSTER_DIR"
	if kind get clusters 2>/dev/null | grep -qx "$KIND_NAME"; then
		log "kind cluster $KIND_NAME exists"
		kind export kubeconfig --name "$KIND_NAME" --kubeconfig "$KUBECONFIG_PATH"
	else
		log "creating kind cluster $KIND_NAME"
		kind create cluster --name "$KIND_NAME" --kubeconfig "$KUBECONFIG_PATH" --wait 180s
	fi
	echo "export KUBECONFIG=$KUBECONFIG_PATH"
}

# start NAME CMD...: runs a component as a daemon in its own session, logging to
# logs/NAME.log, its pid in run/NAME.pid. Skipped when that pid is alive.
start() {
	local name=$1
	shift
	if pid_alive "$name"; then
		return
	fi
	log "starting $name"
	setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
	echo $! >"$RUN/$name.pid"
}

# healthy NAME DEADLINE CHECK...: waits for a component's check; on failure prints its log.
healthy() {
	local name=$1 deadline=$2
	shift 2
	local end=$(($(date +%s) + deadline))
	until "$@" >/dev/null 2>&1; do
		if ! pid_alive "$name"; then
			show_tail "$LOGS/$name.log"
			die "$name exited (log: $LOGS/$name.log)"
		fi
		if (($(date +%s) >= end)); then
			show_tail "$LOGS/$name.log"
			die "$name not healthy after ${deadline}s (log: $LOGS/$name.log)"
		fi
		sleep 1
	done
}

api_get() {
	curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
		"https://$HOST_IP:$APISERVER_PORT$1"
}

node_ready_untainted() {
	local out
	out=$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.spec.taints}' 2>/dev/null) || return 1
	[[ $out == "True " ]]
}

all_running() {
	local c
	for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy dnsmasq dns-sync; do
		pid_alive "$c" || return 1
	done
	api_get /readyz >/dev/null 2>&1 && node_ready_untainted
}

host_network() {
	# The bridge exists before any pod so dnsmasq, the kubelet and the API server can bind
	# to the gateway address; the CNI bridge plugin then reuses it.
	if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
		log "creating bridge $BRIDGE ($HOST_IP)"
		ip link add "$BRIDGE" type bridge
	fi
	ip addr show dev "$BRIDGE" | grep -q "inet $HOST_IP/" || ip addr add "$HOST_IP/24" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	# Service traffic from the host never takes the default route, even before kube-proxy
	# has written its rules.
	ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$HOST_IP"
	modprobe br_netfilter 2>/dev/null || true
	modprobe overlay 2>/dev/null || true
	[[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] ||
		die "net.bridge.bridge-nf-call-iptables missing (kernel module br_netfilter)"
	sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
}

audit_policy() {
	# The fault suite reads who wrote what, and when, from the audit log (leader fencing:
	# no two lease holders' writes overlap). Only writes, without bodies; the node and the
	# control plane's own controllers, which write all the time, are left out. Every
	# request of a ServiceAccount outside kube-system (the operator's, as the suite runs
	# it) is logged too, reads included: the RBAC audit (e2e/tests/rbac_audit.rs) holds
	# the verbs it sends against those the chart grants.
	cat <<AUDIT
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  userGroups: [system:nodes, "system:serviceaccounts:kube-system"]
- level: None
  users: [system:kube-controller-manager, system:kube-scheduler, system:kube-proxy, system:apiserver]
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: Metadata
  userGroups: [system:serviceaccounts]
- level: None
AUDIT
}

write_configs() {
	mkdir -p "$CLUSTER_DIR/cni/net.d" "$CLUSTER_DIR/containerd" "$CLUSTER_DIR/kubelet" "$DNS_DIR"
	audit_policy >"$CLUSTER_DIR/audit-policy.yaml"
	cat >"$CLUSTER_DIR/cni/net.d/10-flotilla.conflist" <<CNI
{
  "cniVersion": "0.4.0",
  "name": "flotilla",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$HOST_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$CLUSTER_DIR/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CNI
	cat >"$CLUSTER_DIR/containerd/config.toml" <<TOML
version = 2
root = "$CLUSTER_DIR/containerd/root"
state = "$CLUSTER_DIR/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This VM refuses negative oom_score_adj values; without this every sandbox fails.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_DIR/cni/net.d"
TOML
	cat >"$CLUSTER_DIR/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $HOST_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failSwapOn: false
clusterDNS: [$HOST_IP]
clusterDomain: cluster.local
# A development machine's disk is often fuller than production defaults allow.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
YAML
}

start_containerd() {
	start containerd containerd --config "$CLUSTER_DIR/containerd/config.toml"
	healthy containerd 30 ctr --address "$CONTAINERD_SOCK" version
}

base_images_present() {
	local present
	present=$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q 2>/dev/null)
	grep -qxF "$PAUSE_IMAGE" <<<"$present" && grep -qxF flotilla.local/probe:1 <<<"$present"
}

import_base_images() {
	local dir=$CLUSTER_DIR/images root digest
	mkdir -p "$dir"
	root=$(mktemp -d)
	cp "$K8S_BIN/pause" "$root/pause"
	digest=$(oci_archive "$PAUSE_IMAGE" "$root" 65535 '["/pause"]' '[]' "$dir/pause.tar")
	rm -rf "$root"
	oci_import "$PAUSE_IMAGE" "$digest" "$dir/pause.tar"

	# The readiness probe's image: Debian's static busybox httpd (its nc and nslookup
	# work in a pod; its wget does not, so the host does the HTTP calls).
	root=$(mktemp -d)
	mkdir -p "$root/bin" "$root/srv"
	cp /bin/busybox "$root/bin/busybox"
	echo "flotilla-probe-ok" >"$root/srv/index.html"
	digest=$(oci_archive flotilla.local/probe:1 "$root" 65532 \
		'["/bin/busybox","httpd","-f","-p","8080","-h","/srv"]' '[]' "$dir/probe.tar")
	rm -rf "$root"
	oci_import flotilla.local/probe:1 "$digest" "$dir/probe.tar"
}

start_control_plane() {
	start etcd etcd --name flotilla --data-dir "$CLUSTER_DIR/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
		--advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "flotilla=http://127.0.0.1:$ETCD_PEER_PORT"
	healthy etcd 30 curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"

	start kube-apiserver "$K8S_BIN/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
		--bind-address "$HOST_IP" --advertise-address "$HOST_IP" --secure-port "$APISERVER_PORT" \
		--insecure-port 0 --cert-dir "$PKI" \
		--tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
		--client-ca-file "$PKI/ca.crt" \
		--authorization-mode Node,RBAC --anonymous-auth=false \
		--enable-admission-plugins NodeRestriction \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$PKI/sa.pub" \
		--service-account-signing-key-file "$PKI/sa.key" \
		--kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
		--kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority "$PKI/ca.crt" \
		--kubelet-preferred-address-types InternalIP \
		--allow-privileged=true --profiling=false \
		--audit-policy-file "$CLUSTER_DIR/audit-policy.yaml" --audit-log-path "$LOGS/audit.log" \
		--audit-log-maxsize 200 --audit-log-maxbackup 1
	healthy kube-apiserver 90 api_get /readyz

	start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
		--kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
		--authentication-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
		--authorization-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
		--bind-address 127.0.0.1 --port 0 --leader-elect=false \
		--controllers '*,-route,-service,-cloud-node-lifecycle' \
		--use-service-account-credentials=true \
		--service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
		--cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
		--service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
	start kube-scheduler "$K8S_BIN/kube-scheduler" \
		--kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
		--authentication-kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
		--authorization-kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
		--bind-address 127.0.0.1 --port 0 --leader-elect=false --profiling=false
	healthy kube-controller-manager 30 curl -fsSk https://127.0.0.1:10257/healthz
	healthy kube-scheduler 30 curl -fsSk https://127.0.0.1:10259/healthz
}

start_node() {
	start kubelet "$K8S_BIN/kubelet" \
		--config "$CLUSTER_DIR/kubelet/config.yaml" \
		--kubeconfig "$CLUSTER_DIR/kubelet.kubeconfig" \
		--container-runtime remote \
		--container-runtime-endpoint "unix://$CONTAINERD_SOCK" \
		--node-ip "$HOST_IP" --hostname-override "$NODE_NAME" \
		--root-dir "$CLUSTER_DIR/kubelet/root" \
		--cgroups-per-qos=false --enforce-node-allocatable=
	healthy kubelet 60 curl -fsS http://127.0.0.1:10248/healthz

	start kube-proxy "$K8S_BIN/kube-proxy" \
		--kubeconfig "$CLUSTER_DIR/kube-proxy.kubeconfig" \
		--proxy-mode iptables --cluster-cidr "$POD_CIDR" \
		--hostname-override "$NODE_NAME" --conntrack-max-per-core=0 \
		--healthz-bind-address 127.0.0.1:10256 --metrics-bind-address 127.0.0.1:10249 \
		--nodeport-addresses "127.0.0.1/32,$HOST_IP/32"
	healthy kube-proxy 30 curl -fsS http://127.0.0.1:10256/healthz
}

start_dns() {
	touch "$DNS_DIR/services"
	start dnsmasq dnsmasq --keep-in-foreground --log-facility=- --user=root \
		--no-resolv --no-hosts --hostsdir="$DNS_DIR" --local=/cluster.local/ \
		--domain-needed --bind-interfaces --listen-address="$HOST_IP"
	start dns-sync "$HERE/dns-sync.sh" "$DNS_DIR" "$KUBECONFIG_PATH"
	healthy dns-sync 30 grep -q ' kubernetes.default.svc.cluster.local' "$DNS_DIR/services"
	healthy dnsmasq 10 pid_alive dnsmasq
}

probe() {
	log "waiting for node $NODE_NAME to be Ready without taints"
	if ! wait_until "node Ready" 120 node_ready_untainted; then
		kc get node -o wide >&2 || true
		show_tail "$LOGS/kubelet.log"
		die "node $NODE_NAME not Ready"
	fi
	log "probing: a pod behind a Service, reached from the host and by DNS from the pod"
	# A probe namespace still terminating from an earlier run must be gone first.
	kc wait --for=delete "namespace/$PROBE_NS" --timeout=60s >/dev/null 2>&1 || true
	kc create namespace "$PROBE_NS" >/dev/null 2>&1 || true
	wait_until "default ServiceAccount in $PROBE_NS" 60 kc -n "$PROBE_NS" get serviceaccount default ||
		die "no default ServiceAccount in $PROBE_NS (controller-manager: $LOGS/kube-controller-manager.log)"
	kc -n "$PROBE_NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: probe, labels: {app: probe}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true, runAsUser: 65532}
  containers:
  - name: httpd
    image: flotilla.local/probe:1
    imagePullPolicy: Never
    ports: [{containerPort: 8080, protocol: TCP}]
    readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: probe}
spec:
  selector: {app: probe}
  ports: [{port: 80, targetPort: 8080, protocol: TCP}]
YAML
	if ! kc -n "$PROBE_NS" wait --for=condition=Ready pod/probe --timeout=120s >/dev/null; then
		kc -n "$PROBE_NS" describe pod probe >&2 || true
		show_tail "$LOGS/kubelet.log"
		show_tail "$LOGS/containerd.log"
		die "probe pod not Ready"
	fi
	local ip
	ip=$(kc -n "$PROBE_NS" get svc probe -o jsonpath='{.spec.clusterIP}')
	if ! wait_until "http://$ip/ from the host" 60 curl -fsS --max-time 2 "http://$ip/"; then
		show_tail "$LOGS/kube-proxy.log"
		die "Service probe ($ip) did not answer from the host"
	fi
	if ! wait_until "DNS name probe.$PROBE_NS from the pod" 30 \
		kc -n "$PROBE_NS" exec probe -- busybox nslookup "probe.$PROBE_NS.svc.cluster.local"; then
		kc -n "$PROBE_NS" exec probe -- busybox nslookup "probe.$PROBE_NS.svc.cluster.local" >&2 || true
		cat "$DNS_DIR/services" >&2
		show_tail "$LOGS/dnsmasq.log"
		die "cluster DNS did not resolve probe.$PROBE_NS from inside a pod"
	fi
	log "probe answered through Service $ip; DNS and kubectl exec work"
	kc delete namespace "$PROBE_NS" --wait=false >/dev/null
}

main() {
	if [[ $CLUSTER == kind ]]; then
		kind_up
		return
	fi
	[[ $CLUSTER == embedded ]] || die "unknown CLUSTER=$CLUSTER (embedded or kind)"
	need_root
	mkdir -p "$RUN" "$LOGS"
	if [[ -f $KUBECONFIG_PATH ]] && all_running &&
		! diff -q <(audit_policy) "$CLUSTER_DIR/audit-policy.yaml" >/dev/null 2>&1; then
		# The API server reads its audit policy at start only.
		log "the audit policy changed: restarting the cluster (make cluster-down)"
		"$HERE/down.sh"
		mkdir -p "$RUN" "$LOGS"
	fi
	if [[ -f $KUBECONFIG_PATH ]] && all_running; then
		log "cluster already running"
		# The kubelet's image GC (disk pressure) may have removed the base images,
		# which no registry serves: without the pause image no pod starts.
		if ! base_images_present; then
			log "base images missing (removed by the kubelet's image GC?): importing them again"
			import_base_images
		fi
		echo "export KUBECONFIG=$KUBECONFIG_PATH"
		return
	fi
	if compgen -G "$RUN/*.pid" >/dev/null; then
		# Left by a cluster that was killed rather than stopped (a CI runner ending the
		# session, a reboot): stale pods, network state and pids. Start from clean.
		log "a previous cluster in $CLUSTER_DIR is not healthy: cleaning it up first (make cluster-down)"
		"$HERE/down.sh"
		mkdir -p "$RUN" "$LOGS"
	fi
	"$HERE/install.sh"
	host_network
	make_pki
	write_configs
	start_containerd
	import_base_images
	start_control_plane
	start_node
	start_dns
	probe
	log "cluster ready"
	echo "export KUBECONFIG=$KUBECONFIG_PATH"
}

main "$@"
