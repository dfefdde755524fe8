#!/usr/bin/env bash
# Installs the Debian packages the embedded cluster needs and builds Kubernetes 1.20 from
# Debian's source package into $K8S_BIN. Both steps are skipped when already done.
set -euo pipefail
# shellcheck source=e2e/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(etcd-server containerd runc containernetworking-plugins iptables dnsmasq-base
	golang-go rsync jq umoci golang-github-modern-go-reflect2-dev openssl conntrack
	musl-tools gcc libc6-dev make dpkg-dev curl ca-certificates kmod procps iproute2
	util-linux busybox-static
	# The traffic gate's Prometheus source is tested against a real Prometheus.
	prometheus
	# The dashboard's e2e drives a real headless browser through WebDriver.
	chromium chromium-driver)
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
BUILD_LOG=$K8S_CACHE/build.log

ensure_packages() {
	local missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		log "Debian packages already installed"
		return
	fi
	need_root
	mkdir -p "$K8S_CACHE"
	log "installing Debian packages: ${missing[*]}"
	add_deb_src
	# Third-party sources configured on the machine may be unreachable; Debian's suffice.
	apt-get update >>"$K8S_CACHE/apt.log" 2>&1 || log "apt-get update reported errors (see $K8S_CACHE/apt.log); continuing"
	run_logged "$K8S_CACHE/apt.log" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"
}

add_deb_src() {
	local f=/etc/apt/sources.list.d/flotilla-deb-src.sources
	[[ -f $f ]] && return
	log "adding a deb-src entry for bookworm main ($f)"
	cat >"$f" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
}

binaries_built() {
	for c in "${COMPONENTS[@]}"; do
		[[ -x $K8S_BIN/$c ]] || return 1
	done
	[[ -x $K8S_BIN/pause ]]
}

build_kubernetes() {
	if binaries_built; then
		log "Kubernetes $K8S_VERSION binaries cached in $K8S_BIN"
		return
	fi
	mkdir -p "$K8S_CACHE/dl"
	: >"$BUILD_LOG"
	local dsc=$K8S_CACHE/dl/kubernetes_${K8S_DEB_VERSION#*:}.dsc
	if [[ ! -f $dsc ]]; then
		add_deb_src
		if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q "^Version: $K8S_DEB_VERSION"; then
			apt-get update >>"$K8S_CACHE/apt.log" 2>&1 || true
		fi
		log "downloading Debian source package kubernetes $K8S_DEB_VERSION"
		(cd "$K8S_CACHE/dl" && run_logged "$BUILD_LOG" apt-get source --download-only "kubernetes=$K8S_DEB_VERSION")
	fi
	local src=$K8S_CACHE/src
	rm -rf "$src"
	log "unpacking the source (orig tarball + Debian patches)"
	run_logged "$BUILD_LOG" dpkg-source --no-check -x "$dsc" "$src"

	# reflect2 1.0.1 (vendored) crashes kube-apiserver under Go >= 1.18 when a custom
	# resource is written; Debian's 1.0.2 fixes it.
	log "replacing vendored reflect2 1.0.1 with Debian's 1.0.2"
	local r2=/usr/share/gocode/src/github.com/modern-go/reflect2
	[[ -d $r2 ]] || die "$r2 missing (package golang-github-modern-go-reflect2-dev)"
	rm -rf "$src/vendor/github.com/modern-go/reflect2"
	mkdir -p "$src/vendor/github.com/modern-go/reflect2"
	find "$r2" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
		-exec cp {} "$src/vendor/github.com/modern-go/reflect2/" \;

	# GOPATH mode, as Debian's debian/rules builds it.
	mkdir -p "$src/.go/src/k8s.io"
	ln -sfn ../../.. "$src/.go/src/k8s.io/kubernetes"
	log "building ${COMPONENTS[*]} (cold: about 10 minutes on 2 cores; log: $BUILD_LOG)"
	# The targets go in by argument: build_go runs inside run_with_heartbeat, and bash's
	# dynamic scoping would let that function's locals shadow a variable of ours.
	local targets=()
	for c in "${COMPONENTS[@]}"; do targets+=("cmd/$c"); done
	build_go() {
		cd "$src"
		export GOPATH=$src/.go CGO_ENABLED=0 PATH=/usr/lib/go/bin:$PATH HOME=$K8S_CACHE/home
		mkdir -p "$HOME"
		make WHAT="$*"
	}
	run_with_heartbeat "$BUILD_LOG" "building Kubernetes" build_go "${targets[@]}"

	log "building the pause binary (gcc -Os -static)"
	run_logged "$BUILD_LOG" gcc -Os -static -o "$src/_output/pause" "$src/build/pause/linux/pause.c"

	mkdir -p "$K8S_BIN.tmp"
	for c in "${COMPONENTS[@]}"; do cp "$src/_output/bin/$c" "$K8S_BIN.tmp/"; done
	cp "$src/_output/pause" "$K8S_BIN.tmp/pause"
	rm -rf "$K8S_BIN"
	mv "$K8S_BIN.tmp" "$K8S_BIN"
	# The 1 GB source tree and Go build cache are no longer needed.
	rm -rf "${src:?}" "${K8S_CACHE:?}/home" "$K8S_CACHE"/kubernetes_*.orig.tar.gz
	log "Kubernetes binaries ready in $K8S_BIN"
}

main() {
	ensure_packages
	build_kubernetes
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
