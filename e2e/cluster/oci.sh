# shellcheck shell=bash
# Writes OCI image archives without Docker or a registry: one uncompressed layer from a
# directory, a config with a numeric user, and an index naming the image for
# `ctr images import` (io.containerd.image.name) and for `kind load image-archive`.
# Sourced, never run.

# oci_archive NAME:TAG ROOTFS_DIR USER ENTRYPOINT_JSON ENV_JSON OUT_TAR
oci_archive() {
	local ref=$1 rootfs=$2 user=$3 entrypoint=$4 env=$5 out=$6
	local work
	work=$(mktemp -d)
	mkdir -p "$work/blobs/sha256"

	# Reproducible layer: fixed owner and mtime, sorted names, so unchanged input gives
	# the same digest and imports become no-ops.
	tar --create --file "$work/layer.tar" --directory "$rootfs" --sort=name \
		--owner=0 --group=0 --numeric-owner --mtime=@0 --mode=u+rwX,go+rX .
	local layer_digest layer_size
	layer_digest=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
	layer_size=$(stat -c %s "$work/layer.tar")
	mv "$work/layer.tar" "$work/blobs/sha256/$layer_digest"

	jq -cn --arg user "$user" --argjson ep "$entrypoint" --argjson env "$env" \
		--arg diff "sha256:$layer_digest" '{
			architecture: "amd64", os: "linux", created: "1970-01-01T00:00:00Z",
			config: {User: $user, Entrypoint: $ep, Env: $env, WorkingDir: "/"},
			rootfs: {type: "layers", diff_ids: [$diff]}
		}' >"$work/config.json"
	local config_digest config_size
	config_digest=$(sha256sum "$work/config.json" | cut -d' ' -f1)
	config_size=$(stat -c %s "$work/config.json")
	mv "$work/config.json" "$work/blobs/sha256/$config_digest"

	jq -cn --arg cd "sha256:$config_digest" --argjson cs "$config_size" \
		--arg ld "sha256:$layer_digest" --argjson ls "$layer_size" '{
			schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
			config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
			layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]
		}' >"$work/manifest.json"
	local manifest_digest manifest_size
	manifest_digest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
	manifest_size=$(stat -c %s "$work/manifest.json")
	mv "$work/manifest.json" "$work/blobs/sha256/$manifest_digest"

	jq -cn --arg md "sha256:$manifest_digest" --argjson ms "$manifest_size" \
		--arg ref "$ref" --arg tag "${ref##*:}" '{
			schemaVersion: 2,
			manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
				digest: $md, size: $ms,
				platform: {architecture: "amd64", os: "linux"},
				annotations: {"io.containerd.image.name": $ref,
					"org.opencontainers.image.ref.name": $tag}}]
		}' >"$work/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"

	tar --create --file "$out" --directory "$work" --sort=name --owner=0 --group=0 \
		--numeric-owner --mtime=@0 oci-layout index.json blobs
	rm -rf "$work"
	# The manifest digest identifies the image: callers compare it with what containerd has.
	echo "sha256:$manifest_digest"
}

# ctr_k8s ARGS...: ctr against the embedded cluster's containerd, CRI namespace.
ctr_k8s() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# image_present REF DIGEST: containerd already holds REF at exactly DIGEST.
image_present() {
	local ref=$1 digest=$2
	ctr_k8s images ls 2>/dev/null | awk -v r="$ref" -v d="$digest" '$1 == r && $3 == d {f=1} END {exit !f}'
}

# oci_import REF DIGEST TAR: loads an archive into the cluster's runtime unless present.
oci_import() {
	local ref=$1 digest=$2 tar=$3
	if [[ ${CLUSTER:-embedded} == kind ]]; then
		kind load image-archive --name "${KIND_NAME:-flotilla}" "$tar"
		return
	fi
	if image_present "$ref" "$digest"; then
		return
	fi
	ctr_k8s images import "$tar" >/dev/null
	image_present "$ref" "$digest" || die "import of $ref ($digest) did not show up in containerd"
}
