#!/usr/bin/env bash
# Builds, once, what the CRD-server tier (e2e/crd-server/run.sh) runs: a Kubernetes 1.36
# apiextensions-apiserver (our own main, e2e/crd-server/apiserver/main.go, on Debian's
# packaged upstream source), etcd 3.5 and kubectl 1.36, all from Debian sid packages.
# Nothing is installed into the system: a private apt configuration downloads the .debs
# and `dpkg -x` unpacks them into a private root. The binaries land in $MODERN_BIN and are
# reused while main.go and this script are unchanged: a warm run takes about a second.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
source "$REPO/e2e/cluster/lib.sh"
# shellcheck source=e2e/crd-server/lib.sh
source "$REPO/e2e/crd-server/lib.sh"

APT=$MODERN_CACHE/apt
ROOT=$MODERN_CACHE/root
DEBS=$MODERN_CACHE/debs
GOROOT_DIR=$ROOT/usr/lib/go-$GO_VERSION
GOPATH_DIR=$ROOT/usr/share/gocode
BUILD_LOG=$MODERN_CACHE/build.log
MAIN_DIR=$REPO/e2e/crd-server/apiserver

# What the binaries were built from: a change to either rebuilds them.
build_key() {
	cat "$MAIN_DIR/main.go" "${BASH_SOURCE[0]}" "$REPO/e2e/crd-server/lib.sh" | sha256sum | cut -c1-16
}

if [[ -f $MODERN_BIN/.key && $(cat "$MODERN_BIN/.key") == "$(build_key)" ]] &&
	[[ -x $MODERN_BIN/apiextensions-apiserver && -x $MODERN_BIN/etcd && -x $MODERN_BIN/kubectl ]]; then
	log "modern API server binaries cached in $MODERN_BIN ($(cat "$MODERN_BIN/versions"))"
	exit 0
fi

START=$(date +%s)
mkdir -p "$MODERN_CACHE" "$DEBS"
: >"$BUILD_LOG"
for tool in apt-get apt-cache dpkg sha256sum; do
	command -v "$tool" >/dev/null || die "$tool is needed (Debian's apt and dpkg)"
done

# The private apt configuration: sid only, its own lists, cache and (empty) dpkg status,
# none of the system's sources. The mirror is the one the system uses for bookworm.
apt_setup() {
	local mirror=${MODERN_APT_MIRROR:-}
	if [[ -z $mirror ]]; then
		mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT) $(TARGET_OF)' |
			awk '$2 == "bookworm" && $3 == "main" && $4 == "deb" { print $1; exit }')
	fi
	[[ -n $mirror ]] || die "no Debian mirror for bookworm main in the system's apt sources (set MODERN_APT_MIRROR)"
	mkdir -p "$APT"/{lists/partial,cache/archives/partial,empty}
	: >"$APT/status"
	cat >"$APT/sources.list" <<SOURCES
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main
SOURCES
	cat >"$APT/apt.conf" <<CONF
Dir::Etc::sourcelist "$APT/sources.list";
Dir::Etc::sourceparts "$APT/empty";
Dir::Etc::preferences "$APT/empty/preferences";
Dir::Etc::preferencesparts "$APT/empty";
Dir::State::Lists "$APT/lists";
Dir::State::status "$APT/status";
Dir::Cache "$APT/cache";
Acquire::Languages "none";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
APT::Sandbox::User "root";
CONF
	export APT_CONFIG=$APT/apt.conf
	log "apt: Debian sid from $mirror (private lists in $APT)"
	run_logged "$BUILD_LOG" apt-get update
}

# Go import path -> Debian binary package, from the Go-Import-Path fields of sid's Sources.
import_map() {
	local sources
	sources=$(apt-get indextargets --format '$(FILENAME)' 'Created-By: Sources')
	/usr/lib/apt/apt-helper cat-file "$sources" | awk '
		/^Package: / { src = $2; paths = ""; bins = ""; field = "" }
		/^Binary: / { bins = substr($0, 9); field = "bin"; next }
		/^Go-Import-Path: / { paths = substr($0, 17); field = ""; next }
		/^ / && field == "bin" { bins = bins $0; next }
		/^[A-Za-z-]+: / { field = "" }
		/^$/ {
			if (paths != "" && bins != "") {
				n = split(bins, b, /[ ,]+/); dev = ""
				for (i = 1; i <= n; i++) if (b[i] ~ /^golang-.*-dev$/) { dev = b[i]; break }
				m = split(paths, p, /[ ,]+/)
				if (dev != "") for (i = 1; i <= m; i++) if (p[i] != "") print p[i], dev
			}
			paths = ""; bins = ""
		}' >"$APT/import-map"
	log "apt: $(wc -l <"$APT/import-map") Go import paths known in sid"
}

# fetch PACKAGE...: downloads the packages not yet unpacked and unpacks them into $ROOT.
declare -A UNPACKED=()
fetch() {
	local wanted=() p
	for p in "$@"; do
		[[ -n ${UNPACKED[$p]:-} ]] || wanted+=("$p")
	done
	((${#wanted[@]})) || return 0
	# The files of the current candidates (older versions may lie in $DEBS too); apt skips
	# a file it already has.
	local files deb
	files=$(cd "$DEBS" && apt-get download --print-uris "${wanted[@]}" | awk '{ print $2 }')
	(cd "$DEBS" && run_logged "$BUILD_LOG" apt-get download "${wanted[@]}")
	for deb in $files; do
		dpkg -x "$DEBS/$deb" "$ROOT"
		echo "${deb%.deb}" >>"$MODERN_CACHE/packages"
	done
	for p in "${wanted[@]}"; do
		UNPACKED[$p]=1
	done
}

# Packages point some paths at others with absolute links (/usr/share/gocode/...): point
# them into the private root instead.
relink_absolute() {
	local link target
	while IFS= read -r -d '' link; do
		target=$(readlink "$link")
		if [[ $target == /* && $target != "$ROOT"/* ]]; then
			ln -sfn "$ROOT$target" "$link"
		fi
	done < <(find "$ROOT" -type l -print0)
}

go_env() {
	env GOROOT="$GOROOT_DIR" GOPATH="$GOPATH_DIR" GO111MODULE=off CGO_ENABLED=0 \
		GOTOOLCHAIN=local GOFLAGS= GOCACHE="$MODERN_CACHE/go-build" GOTELEMETRY=off \
		"$GOROOT_DIR/bin/go" "$@"
}

# The Go packages main.go reaches that are not unpacked yet, one import path a line.
missing_imports() {
	(cd "$MAIN_DIR" && go_env list -e -deps -f '{{if .Error}}{{.ImportPath}}{{end}}' . 2>/dev/null) |
		grep -v '^$' | sort -u || true
}

# The Debian package holding an import path: the longest Go-Import-Path that prefixes it.
package_for() {
	awk -v want="$1" '
		(want == $1 || index(want, $1 "/") == 1) && length($1) > best { best = length($1); pkg = $2 }
		END { if (pkg != "") print pkg }' "$APT/import-map"
}

# The golang-*-dev packages PACKAGE depends on.
golang_depends() {
	apt-cache depends --no-recommends --no-suggests "$1" |
		awk '$1 == "Depends:" && $2 ~ /^golang-.*-dev$/ { print $2 }'
}

resolve_go_deps() {
	local round=0 missing path pkg
	while :; do
		round=$((round + 1))
		mapfile -t missing < <(missing_imports)
		((${#missing[@]})) || break
		((round <= 40)) || die "Go dependencies still missing after 40 rounds: ${missing[*]}"
		local pkgs=() unknown=()
		declare -A seen=()
		for path in "${missing[@]}"; do
			pkg=$(package_for "$path")
			if [[ -z $pkg ]]; then
				unknown+=("$path")
			elif [[ -n ${UNPACKED[$pkg]:-} ]]; then
				# A transitional package (gogoprotobuf, golang-protobuf 1.3): the source
				# is in what it depends on.
				local dep found=
				for dep in $(golang_depends "$pkg"); do
					if [[ -z ${UNPACKED[$dep]:-} && -z ${seen[$dep]:-} ]]; then
						seen[$dep]=1
						pkgs+=("$dep")
					fi
					found=1
				done
				[[ -n $found ]] || unknown+=("$path (in $pkg, unpacked, but not found)")
			elif [[ -z ${seen[$pkg]:-} ]]; then
				seen[$pkg]=1
				pkgs+=("$pkg")
			fi
		done
		((${#unknown[@]} == 0)) || die "no sid package holds: ${unknown[*]}"
		log "  Go dependencies, round $round: ${#missing[@]} import paths missing, fetching ${#pkgs[@]} packages"
		fetch "${pkgs[@]}"
		relink_absolute
		unset seen
	done
	log "Go dependencies complete: $(grep -c '^golang-.*-dev_' "$MODERN_CACHE/packages") golang-*-dev packages"
}

apt_setup
import_map
rm -rf "$ROOT" "$MODERN_CACHE/packages"
mkdir -p "$ROOT"
log "fetching Go $GO_VERSION, etcd, kubectl and the apiextensions-apiserver source (sid)"
fetch "golang-$GO_VERSION-go" "golang-$GO_VERSION-src" etcd-server kubectl golang-k8s-apiextensions-apiserver-dev
relink_absolute
[[ -x $GOROOT_DIR/bin/go ]] || die "no Go toolchain at $GOROOT_DIR"
log "Go: $(go_env version)"
resolve_go_deps

server_version=$(sed -nE 's/^golang-k8s-apiextensions-apiserver-dev_([^_]+)_.*/\1/p' "$MODERN_CACHE/packages")
# 0.36.4-1 -> v1.36.4: staging repositories are numbered 0.minor.patch for Kubernetes 1.minor.patch.
k8s_version=$(sed -E 's/^0\.([0-9]+)\.([0-9]+).*/1.\1.\2/' <<<"$server_version")
minor=$(cut -d. -f2 <<<"$k8s_version")
log "building apiextensions-apiserver v$k8s_version (go build -p 2; log: $BUILD_LOG)"
mkdir -p "$MODERN_BIN"
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=v$k8s_version"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
(cd "$MAIN_DIR" && run_with_heartbeat "$BUILD_LOG" "building apiextensions-apiserver" \
	go_env build -p 2 -trimpath -ldflags "$ldflags" -o "$MODERN_BIN/apiextensions-apiserver.new" .)
mv "$MODERN_BIN/apiextensions-apiserver.new" "$MODERN_BIN/apiextensions-apiserver"
install -m 0755 "$ROOT/usr/bin/etcd" "$MODERN_BIN/etcd"
install -m 0755 "$ROOT/usr/bin/kubectl" "$MODERN_BIN/kubectl"

etcd_version=$("$MODERN_BIN/etcd" --version | awk '/^etcd Version/ { print $3 }')
kubectl_version=$("$MODERN_BIN/kubectl" version --client -o json | sed -nE 's/.*"gitVersion": "([^"]+)".*/\1/p' | head -n1)
echo "apiextensions-apiserver v$k8s_version, etcd $etcd_version, kubectl $kubectl_version" >"$MODERN_BIN/versions"
build_key >"$MODERN_BIN/.key"
log "built in $(($(date +%s) - START))s: $(cat "$MODERN_BIN/versions"); $(wc -l <"$MODERN_CACHE/packages") sid packages, $(du -sh "$DEBS" | cut -f1) downloaded, $(du -sh "$ROOT" | cut -f1) unpacked, Go build cache $(du -sh "$MODERN_CACHE/go-build" | cut -f1)"
