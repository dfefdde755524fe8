#!/usr/bin/env bash
# `make images`: builds static (musl) binaries of flotilla, the e2e testapp and the five
# sample services (sample-services/), packages
# them as OCI images with a non-root numeric user, and loads them into the cluster's
# runtime (embedded containerd, or kind); and the shop's NATS broker from Debian's
# nats-server. Unchanged binaries are neither repackaged nor re-imported.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
source "$HERE/lib.sh"
# shellcheck source=e2e/cluster/oci.sh
source "$HERE/oci.sh"

TARGET=x86_64-unknown-linux-musl
OUT=$REPO/target/e2e-images
USER_ID=65532
SAMPLES="users inventory payments orders storefront"

toolchain() {
	if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
		log "adding Rust target $TARGET"
		rustup target add "$TARGET" ||
			die "cannot install the Rust target $TARGET (rustup target add $TARGET); static images need it"
	fi
	# ring compiles C code: it needs a musl C compiler.
	if ! command -v musl-gcc >/dev/null; then
		log "installing musl-tools (musl-gcc, for ring's C code)"
		apt_install musl-tools || die "cannot install musl-tools (apt-get install musl-tools)"
	fi
	command -v jq >/dev/null || apt_install jq || die "jq is required"
}

build() {
	log "building static binaries: flotilla, testapp, samples (cargo --profile image --target $TARGET)"
	local logfile=$OUT/cargo-build.log
	: >"$logfile"
	run_with_heartbeat "$logfile" "building static binaries" env CC_x86_64_unknown_linux_musl=musl-gcc \
		cargo build --locked --profile image --target "$TARGET" -p flotilla -p flotilla-testapp -p flotilla-samples \
		--manifest-path "$REPO/Cargo.toml"
}

# image REF BINARY ENV_JSON: packages BINARY as /NAME, its entrypoint, then loads it.
image() {
	local ref=$1 bin=$2 env=$3
	local name root
	name=$(basename "$bin")
	root=$(mktemp -d)
	cp "$bin" "$root/$name"
	root_image "$ref" "$root" "[\"/$name\"]" "$env"
	rm -rf "$root"
}

# root_image REF ROOT ENTRYPOINT_JSON ENV_JSON: packages the directory ROOT as the image's
# only layer, reusing the archive when ROOT's files and the config are unchanged, then
# loads it.
root_image() {
	local ref=$1 root=$2 entrypoint=$3 env=$4
	local stem sum digest
	stem=$OUT/$(echo "$ref" | tr '/:' '__')
	sum=$( (cd "$root" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "$entrypoint $env") |
		sha256sum | cut -d' ' -f1)
	if [[ -f $stem.tar && -f $stem.digest && $(cat "$stem.input" 2>/dev/null) == "$sum" ]]; then
		digest=$(cat "$stem.digest")
	else
		digest=$(oci_archive "$ref" "$root" "$USER_ID" "$entrypoint" "$env" "$stem.tar")
		echo "$digest" >"$stem.digest"
		echo "$sum" >"$stem.input"
	fi
	if [[ $CLUSTER != kind ]] && image_present "$ref" "$digest"; then
		log "$ref unchanged ($digest)"
		return
	fi
	log "loading $ref ($digest)"
	oci_import "$ref" "$digest" "$stem.tar"
}

# The shop's message broker (sample-services/manifests/nats.yaml): Debian's nats-server,
# a Go binary linked against glibc, so the image holds the libraries `ldd` names at their
# paths (the dynamic loader's is compiled into the binary). Ports and flags come from the
# Microservice's args.
nats_image() {
	local bin=/usr/sbin/nats-server root lib
	if [[ ! -x $bin ]]; then
		log "installing nats-server (apt-get install nats-server)"
		apt_install nats-server || die "cannot install nats-server (apt-get install nats-server)"
	fi
	root=$(mktemp -d)
	cp "$bin" "$root/nats-server"
	for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
	root_image flotilla.local/nats:dev "$root" '["/nats-server"]' '[]'
	rm -rf "$root"
}

main() {
	mkdir -p "$OUT"
	if [[ $CLUSTER == embedded ]]; then
		ctr_k8s version >/dev/null 2>&1 ||
			die "the embedded cluster's containerd is not running ($CONTAINERD_SOCK): run make cluster first"
	fi
	toolchain
	build
	local rel=${CARGO_TARGET_DIR:-$REPO/target}/$TARGET/image
	image flotilla.local/flotilla:dev "$rel/flotilla" '["RUST_LOG=info"]'
	image flotilla.local/testapp:v1 "$rel/testapp" '["APP_VERSION=v1","PORT=8080"]'
	image flotilla.local/testapp:v2 "$rel/testapp" '["APP_VERSION=v2","PORT=8080"]'
	# The shop of sample-services/manifests (and `make demo`).
	local sample
	for sample in $SAMPLES; do
		image "flotilla.local/$sample:dev" "$rel/$sample" '["PORT=8080"]'
	done
	nats_image
	log "images ready"
}

main "$@"
