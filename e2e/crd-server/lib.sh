# shellcheck shell=bash disable=SC2034 # variables are used by the scripts sourcing this
# Shared settings of the CRD-server tier (e2e/crd-server/): where its binaries are cached
# and the loopback ports its etcd and API server use. Sourced, never run.

# Everything the tier builds or downloads, outside the repo: a fresh clone or a
# `make cluster-down` never forces the rebuild.
MODERN_CACHE=${MODERN_CACHE:-$HOME/.cache/flotilla/modern-apiserver}
MODERN_BIN=$MODERN_CACHE/bin
# The Go toolchain of sid that builds the server (the package golang-$GO_VERSION-go).
GO_VERSION=1.27

# Ports of its own, away from the embedded cluster's (e2e/cluster/lib.sh: etcd 12379/12380,
# API server 16443, kubelet 10250) and from the default 2379/2380/6443.
MODERN_ETCD_CLIENT_PORT=22379
MODERN_ETCD_PEER_PORT=22380
MODERN_APISERVER_PORT=22443
