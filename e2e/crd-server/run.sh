#!/usr/bin/env bash
# `make crd-server`: the CRDs on a modern API server. Builds (once, cached) a Kubernetes
# 1.36 apiextensions-apiserver, etcd 3.5 and kubectl 1.36 from Debian sid
# (e2e/crd-server/build.sh), starts etcd and the server on loopback ports of their own,
# runs the checks of e2e/tests/crd_server.rs against it, and stops both. The server
# serves CRDs and custom resources only: it proves the API surface (schema, CEL rules and
# their cost budget, field paths, subresources, printer columns, explain), not the
# operator. Needs no root and touches neither the embedded cluster nor the system.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
# shellcheck source=e2e/cluster/lib.sh
source "$REPO/e2e/cluster/lib.sh"
# shellcheck source=e2e/crd-server/lib.sh
source "$REPO/e2e/crd-server/lib.sh"

log "building the modern API server (e2e/crd-server/build.sh; cached in $MODERN_CACHE)"
build_start=$(date +%s)
e2e/crd-server/build.sh
build_seconds=$(($(date +%s) - build_start))

for port in "$MODERN_ETCD_CLIENT_PORT" "$MODERN_ETCD_PEER_PORT" "$MODERN_APISERVER_PORT"; do
	if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		die "port $port on 127.0.0.1 is taken (another make crd-server?)"
	fi
done
if ! command -v openssl >/dev/null; then
	# Minimal Debian images lack it; the system's own (bookworm) sources have it.
	log "installing openssl (apt), for the server's certificates"
	[[ $(id -u) -eq 0 ]] || die "openssl is needed for the server's certificates: apt-get install openssl"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl; } >/dev/null ||
		die "could not install openssl"
fi

RUN=$(mktemp -d "${TMPDIR:-/tmp}/flotilla-crd-server.XXXXXX")
PIDS=()
stop() {
	local status=$? pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if ((status != 0)); then
		show_tail "$RUN/apiserver.log" 30
		show_tail "$RUN/etcd.log" 10
		# Kept for a look: the logs and the server's data.
		log "logs kept in $RUN"
	else
		rm -rf "$RUN"
	fi
	exit "$status"
}
trap stop EXIT

# A CA, the server's certificate for 127.0.0.1, and an admin client certificate in group
# system:masters (an empty user would make kubectl prompt for a username).
PKI=$RUN/pki
mkdir -p "$PKI"
openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -days 2 \
	-subj "/CN=flotilla-crd-server-ca" -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out "$PKI/ca.crt" 2>/dev/null
sign() {
	local name=$1 subj=$2 ext=$3
	openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subj" \
		-out "$PKI/$name.csr" 2>/dev/null
	printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
		"$ext" >"$PKI/$name.ext"
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
		-days 2 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
}
sign server "/CN=flotilla-crd-server" $'extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost'
sign admin "/O=system:masters/CN=flotilla-admin" "extendedKeyUsage=clientAuth"
KUBECONFIG_MODERN=$RUN/kubeconfig
cat >"$KUBECONFIG_MODERN" <<KC
apiVersion: v1
kind: Config
clusters:
- name: crd-server
  cluster:
    certificate-authority: $PKI/ca.crt
    server: https://127.0.0.1:$MODERN_APISERVER_PORT
users:
- name: admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: crd-server
  context: {cluster: crd-server, user: admin}
current-context: crd-server
KC

versions=$(cat "$MODERN_BIN/versions")
server_start=$(date +%s)
log "starting etcd on 127.0.0.1:$MODERN_ETCD_CLIENT_PORT (data in $RUN/etcd)"
"$MODERN_BIN/etcd" --name crd-server --data-dir "$RUN/etcd" \
	--listen-client-urls "http://127.0.0.1:$MODERN_ETCD_CLIENT_PORT" \
	--advertise-client-urls "http://127.0.0.1:$MODERN_ETCD_CLIENT_PORT" \
	--listen-peer-urls "http://127.0.0.1:$MODERN_ETCD_PEER_PORT" \
	--initial-advertise-peer-urls "http://127.0.0.1:$MODERN_ETCD_PEER_PORT" \
	--initial-cluster "crd-server=http://127.0.0.1:$MODERN_ETCD_PEER_PORT" >"$RUN/etcd.log" 2>&1 &
PIDS+=($!)
wait_until "etcd on port $MODERN_ETCD_CLIENT_PORT" 30 bash -c ": </dev/tcp/127.0.0.1/$MODERN_ETCD_CLIENT_PORT" ||
	die "etcd did not come up"

# The server authenticates and authorizes through itself (it answers 404 for
# TokenReviews and SubjectAccessReviews; system:masters needs neither). Admission plugins
# that need the core API or webhooks are off: this server has no Namespaces.
log "starting the apiextensions-apiserver on https://127.0.0.1:$MODERN_APISERVER_PORT"
"$MODERN_BIN/apiextensions-apiserver" \
	--etcd-servers "http://127.0.0.1:$MODERN_ETCD_CLIENT_PORT" \
	--bind-address 127.0.0.1 --secure-port "$MODERN_APISERVER_PORT" \
	--tls-cert-file "$PKI/server.crt" --tls-private-key-file "$PKI/server.key" \
	--client-ca-file "$PKI/ca.crt" \
	--kubeconfig "$KUBECONFIG_MODERN" \
	--authentication-kubeconfig "$KUBECONFIG_MODERN" --authentication-skip-lookup \
	--authorization-kubeconfig "$KUBECONFIG_MODERN" \
	--disable-admission-plugins=NamespaceLifecycle,MutatingAdmissionPolicy,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook \
	--enable-priority-and-fairness=false >"$RUN/apiserver.log" 2>&1 &
PIDS+=($!)
export PATH=$MODERN_BIN:$PATH
# /readyz keeps failing on an informer for Services (there are none here); /livez and
# the discovery of the apiextensions group tell it serves.
wait_until "the API server's /livez" 60 kubectl --kubeconfig "$KUBECONFIG_MODERN" get --raw /livez ||
	die "the API server did not come up"
wait_until "discovery of apiextensions.k8s.io" 30 \
	bash -c "kubectl --kubeconfig '$KUBECONFIG_MODERN' api-resources --api-group=apiextensions.k8s.io | grep -q customresourcedefinitions" ||
	die "the API server serves no discovery for apiextensions.k8s.io"
server_seconds=$(($(date +%s) - server_start))
log "up in ${server_seconds}s: $(kubectl --kubeconfig "$KUBECONFIG_MODERN" version -o json |
	sed -nE 's/.*"gitVersion": "([^"]+)".*/\1/p' | paste -sd' ' | awk '{ print "kubectl " $1 ", server " $2 }')"

log "running the checks (e2e/tests/crd_server.rs)"
checks_start=$(date +%s)
CRD_SERVER_KUBECONFIG=$KUBECONFIG_MODERN cargo test -p flotilla-e2e --locked --test crd_server -- \
	--test-threads=1 --nocapture
checks_seconds=$(($(date +%s) - checks_start))
log "CRD server tier passed ($versions): build ${build_seconds}s, server up ${server_seconds}s, checks ${checks_seconds}s"
