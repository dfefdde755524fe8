#!/usr/bin/env bash
# `make demo`: a real cluster running the sample shop, deployed by Flotilla.
#
# Brings up the cluster (make cluster) unless KUBECONFIG is set, builds and loads the
# images (make images), installs the operator into namespace $DEMO_NS (the Helm chart,
# namespace-scoped; or, when helm or the chart is not usable, `flotilla run` as a local
# process), applies the CRDs (Microservice and MicroserviceClass), starts PostgreSQL on
# this machine (e2e/cluster/postgres.sh) with a database for the shop and its Secret
# orders-db, applies sample-services/manifests (the class `shop` and six Microservices
# using it, the NATS broker among them), waits until every Microservice is Ready, places
# an order through storefront, times the stock update that order.placed carries through
# NATS, deletes the orders pods and reads the order back, and shows what was created.
# Every step is idempotent: a second run changes nothing and takes seconds.
#
# DEMO_NS (default shop), DEMO_TIMEOUT seconds to wait for Ready (default 300),
# DEMO_OPERATOR=helm|process to force how the operator runs.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=e2e/cluster/lib.sh
source "$REPO/e2e/cluster/lib.sh"

NS=${DEMO_NS:-shop}
TIMEOUT=${DEMO_TIMEOUT:-300}
SERVICES=(users inventory payments orders storefront nats)
MANIFESTS=$REPO/sample-services/manifests
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
# The static binary `make images` builds: the same code as the operator image.
FLOTILLA=$TARGET_DIR/x86_64-unknown-linux-musl/image/flotilla
HELM=$REPO/.tools/bin/helm
RELEASE=flotilla
PID_FILE=$CLUSTER_DIR/demo-operator-$NS.pid
OP_LOG=$CLUSTER_DIR/demo-operator-$NS.log
POSTGRES=$REPO/e2e/cluster/postgres.sh
# The shop's database (and its role): the namespace's name as PostgreSQL names go.
DB_NAME=$(tr -- '-' '_' <<<"$NS")

section() { printf '\n== %s\n' "$*"; }

cluster() {
	if [[ -z ${KUBECONFIG:-} ]]; then
		log "KUBECONFIG unset: bringing up the $CLUSTER cluster (make cluster)"
		make --no-print-directory cluster
		export KUBECONFIG=$KUBECONFIG_PATH
	fi
	log "cluster: KUBECONFIG=$KUBECONFIG"
	SERVER_MINOR=$(kubectl version -o json 2>/dev/null | jq -r '.serverVersion.minor' | tr -dc 0-9) ||
		true
	[[ -n ${SERVER_MINOR:-} ]] || die "the cluster at $KUBECONFIG does not answer (kubectl version)"
	log "server version 1.$SERVER_MINOR"
}

images() {
	log "building and loading the images (make images; unchanged images are skipped)"
	make --no-print-directory images
	[[ -x $FLOTILLA ]] || die "make images did not leave $FLOTILLA"
}

crds() {
	# The binary knows which CRDs a server version takes (no CEL rules before 1.25); its
	# output equals the committed file for that version (operator/tests/crd_drift.rs).
	log "applying the CRDs for 1.$SERVER_MINOR (flotilla crd: Microservice and MicroserviceClass)"
	"$FLOTILLA" crd --kube-version "1.$SERVER_MINOR" |
		kubectl apply --server-side --force-conflicts -f - >/dev/null
	kubectl wait --for=condition=Established --timeout=60s \
		crd/microservices.flotilla.dev crd/microserviceclasses.flotilla.dev >/dev/null
	kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
}

# The Helm chart is used when it is there and helm is installed or installable.
use_helm() {
	case ${DEMO_OPERATOR:-} in
	helm) return 0 ;;
	process) return 1 ;;
	esac
	[[ -f $REPO/charts/flotilla/Chart.yaml ]] || return 1
	[[ -x $HELM ]] || make --no-print-directory tools >/dev/null 2>&1 || return 1
	[[ -x $HELM ]]
}

stop_local_operator() {
	if [[ -f $PID_FILE ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
		log "stopping the local operator process of an earlier run (pid $(cat "$PID_FILE"))"
		kill "$(cat "$PID_FILE")"
	fi
	rm -f "$PID_FILE"
}

operator() {
	if use_helm; then
		stop_local_operator
		# Namespace-scoped: a Role in $NS only, plus the chart's small ClusterRole to read
		# MicroserviceClasses (cluster-scoped, so no Role can grant them). The CRDs are
		# applied above (one owner for a cluster-wide object), and no aggregated
		# ClusterRoles. classStatus=true: a namespaced operator leaves class status alone
		# by default, as it sees only its namespace's share of a class's users; this one is
		# the only operator serving the shop namespace, which holds every user of the
		# class shop, so its counts (kubectl get msc) are right.
		log "installing the operator with Helm: release $RELEASE in $NS (rbac.scope=namespace, classStatus=true)"
		"$HELM" upgrade --install "$RELEASE" charts/flotilla -n "$NS" \
			--set rbac.scope=namespace --set crds.install=false \
			--set rbac.aggregateToDefaultRoles=false --set classStatus=true \
			--wait --timeout 3m >"$CLUSTER_DIR/demo-helm.log" 2>&1 || {
			show_tail "$CLUSTER_DIR/demo-helm.log"
			kubectl get pods -n "$NS" -l app.kubernetes.io/name=flotilla -o wide >&2 || true
			die "helm upgrade --install failed (log: $CLUSTER_DIR/demo-helm.log)"
		}
		OPERATOR_DESC="Helm release $RELEASE in namespace $NS (logs: kubectl logs -n $NS deploy/$(kubectl get deploy -n "$NS" -l app.kubernetes.io/name=flotilla -o jsonpath='{.items[0].metadata.name}'))"
		return
	fi
	# No chart or no helm: the operator runs here, against the same cluster.
	if [[ -f $PID_FILE ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null && [[ $PID_FILE -nt $FLOTILLA ]]; then
		log "the operator is already running as a local process (pid $(cat "$PID_FILE"))"
	else
		stop_local_operator
		log "starting the operator as a local process: flotilla run --namespace $NS --class-status=true"
		mkdir -p "$CLUSTER_DIR"
		# --class-status=true for the same reason as classStatus=true above.
		setsid nohup "$FLOTILLA" run --namespace "$NS" --class-status=true \
			--metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0 >>"$OP_LOG" 2>&1 </dev/null &
		echo $! >"$PID_FILE"
	fi
	OPERATOR_DESC="local process pid $(cat "$PID_FILE"), log $OP_LOG (stop: kill \$(cat $PID_FILE))"
}

# The database orders keeps its orders in, outside the cluster as a managed one would be
# (this node has no storage class for one inside), and the Secret the class `shop` points
# orders at: orders-db ("{microservice}-{service}"), with the keys a CloudNativePG app
# Secret has.
database() {
	log "starting PostgreSQL on this machine (e2e/cluster/postgres.sh up; port 55432)"
	"$POSTGRES" up
	# The password of an earlier run, kept: a new one would change the Secret and roll orders.
	local password conn
	password=$(kubectl get secret orders-db -n "$NS" -o jsonpath='{.data.password}' 2>/dev/null | base64 -d) ||
		password=
	conn=$(PASSWORD=$password "$POSTGRES" database "$DB_NAME")
	DB_HOST=$(jq -r .host <<<"$conn")
	[[ $DB_HOST != 127.0.0.1 ]] || die "PostgreSQL does not listen on an address the pods reach (e2e/cluster/postgres.sh status)"
	log "database $DB_NAME at $DB_HOST:$(jq -r .port <<<"$conn"); Secret orders-db in $NS"
	local args=() key
	for key in uri host port username password dbname; do
		args+=("--from-literal=$key=$(jq -r --arg k "$key" '.[$k]' <<<"$conn")")
	done
	kubectl create secret generic orders-db -n "$NS" "${args[@]}" --dry-run=client -o yaml |
		kubectl label --local -f - app.kubernetes.io/part-of=shop -o yaml |
		kubectl apply -f - >/dev/null
}

samples() {
	log "applying sample-services/manifests into namespace $NS (the database's address: $DB_HOST/32)"
	# The class's postgres endpoint names the database's address for the NetworkPolicies
	# (egress to it only). Written into a copy of the manifests before the one apply, not
	# patched after it: a patch would undo and redo the field at every run, each time
	# changing every policy of the shop.
	local work
	work=$(mktemp -d)
	cp "$MANIFESTS"/* "$work/"
	sed -i "s|cidrs: \[\"127.0.0.1/32\"\]|cidrs: [\"$DB_HOST/32\"]|" "$work/class.yaml"
	grep -qF "cidrs: [\"$DB_HOST/32\"]" "$work/class.yaml" ||
		die "cannot set the database address in class.yaml (its postgres endpoint cidrs changed?)"
	kubectl apply --server-side --force-conflicts --field-manager flotilla-demo -n "$NS" \
		-k "$work" | sed 's/^/    /'
	rm -rf "$work"
}

# The Microservices of the namespace, as JSON.
status_json() { kubectl get ms -n "$NS" -o json; }

wait_ready() {
	log "waiting up to ${TIMEOUT}s for every Microservice to be Ready"
	local start=$SECONDS json name state last_report=0
	declare -A ready=()
	while :; do
		json=$(status_json 2>/dev/null) || json='{"items":[]}'
		for name in "${SERVICES[@]}"; do
			[[ -z ${ready[$name]:-} ]] || continue
			state=$(jq -r --arg n "$name" '.items[] | select(.metadata.name == $n) |
				(.status.conditions // [] | map(select(.type == "Ready"))[0]) as $r |
				if ($r.status == "True" and .status.observedGeneration == .metadata.generation)
				then "ready \(.status.replicaSummary // "")" else "" end' <<<"$json")
			if [[ -n $state ]]; then
				ready[$name]=1
				log "  $name Ready (${state#ready }) after $((SECONDS - start))s"
			fi
		done
		((${#ready[@]} == ${#SERVICES[@]})) && return 0
		if ((SECONDS - start >= TIMEOUT)); then
			echo >&2
			for name in "${SERVICES[@]}"; do
				[[ -z ${ready[$name]:-} ]] || continue
				jq -r --arg n "$name" '.items[] | select(.metadata.name == $n) |
					"  \($n) is not Ready:", (.status.conditions // [] | .[] |
					"    \(.type)=\(.status) \(.reason): \(.message)")' <<<"$json" >&2
				jq -e --arg n "$name" 'any(.items[]; .metadata.name == $n)' <<<"$json" >/dev/null ||
					echo "  $name: no such Microservice in $NS" >&2
			done
			echo "  operator: $OPERATOR_DESC" >&2
			kubectl get pods -n "$NS" -o wide >&2 || true
			die "not every Microservice was Ready within ${TIMEOUT}s"
		fi
		if ((SECONDS - last_report >= 15)); then
			last_report=$SECONDS
			local waiting=()
			for name in "${SERVICES[@]}"; do
				[[ -n ${ready[$name]:-} ]] && continue
				waiting+=("$name($(jq -r --arg n "$name" '[.items[] | select(.metadata.name == $n) |
					(.status.conditions // [] | map(select(.type == "Ready"))[0].reason // "no status yet")][0] // "absent"' <<<"$json"))")
			done
			log "  still waiting ($((SECONDS - start))s): ${waiting[*]}"
		fi
		sleep 2
	done
}

# post URL JSON: prints the body, then the status on its own last line.
post() { curl -sS -m 10 -H 'content-type: application/json' -d "$2" -w '\n%{http_code}' "$1"; }

# place_order BASE JSON: like post to BASE/api/orders, again while orders answers 503 (for
# up to 30 s): it refuses orders, before taking any stock or money, until it has reached
# the broker, which may take it a few seconds after the broker is Ready.
place_order() {
	local out deadline=$((SECONDS + 30))
	while out=$(post "$1/api/orders" "$2") && [[ ${out##*$'\n'} == 503 ]] && ((SECONDS < deadline)); do
		sleep 1
	done
	echo "$out"
}

order() {
	STOREFRONT_IP=$(kubectl get svc storefront -n "$NS" -o jsonpath='{.spec.clusterIP}')
	local base=http://$STOREFRONT_IP:80 deadline=$((SECONDS + 60)) out
	log "placing an order through storefront ($base) from this host"
	# Ready pods are in the endpoints; kube-proxy's rules may trail by a moment.
	until curl -sf -m 5 -o /dev/null "$base/api/products"; do
		((SECONDS < deadline)) || die "storefront at $base does not answer /api/products"
		sleep 1
	done
	out=$(post "$base/api/users" '{"name":"Demo Customer","email":"demo@example.com"}')
	[[ ${out##*$'\n'} == 201 ]] || die "registering a customer failed: $out"
	local user
	user=$(jq -r .id <<<"${out%$'\n'*}")
	echo "    POST /api/users -> 201 $(jq -c . <<<"${out%$'\n'*}")"
	out=$(place_order "$base" "{\"userId\":\"$user\",\"items\":[{\"sku\":\"mug-enamel\",\"quantity\":2},{\"sku\":\"tea-earl-grey\",\"quantity\":1}]}")
	[[ ${out##*$'\n'} == 201 ]] || die "the order failed: $out"
	echo "    POST /api/orders -> 201 $(jq -c . <<<"${out%$'\n'*}")"
	log "order confirmed"
	DEMO_USER=$user
	ORDER_ID=$(jq -r .orderId <<<"${out%$'\n'*}")
}

# milliseconds since the epoch
now_ms() { date +%s%3N; }

# stock_of BASE SKU: the units of SKU on inventory's shelf, through storefront.
stock_of() { curl -sf -m 5 "$1/api/products" | jq -r --arg sku "$2" '.[] | select(.sku == $sku) | .stock'; }

# orders publishes order.placed once the order is stored; inventory, subscribed, commits
# the reservations: the stock drops a moment after the order is confirmed.
event() {
	local base=http://$STOREFRONT_IP:80 sku=kettle-steel before after out start placed deadline
	before=$(stock_of "$base" "$sku")
	[[ $before =~ ^[0-9]+$ ]] || die "no stock for $sku from $base/api/products: '$before'"
	((before > 0)) || {
		log "no $sku left to sell (stock 0): skipping the event timing"
		return
	}
	log "ordering one $sku (stock $before) and waiting for order.placed to reach inventory"
	start=$(now_ms)
	out=$(place_order "$base" "{\"userId\":\"$DEMO_USER\",\"items\":[{\"sku\":\"$sku\",\"quantity\":1}]}")
	[[ ${out##*$'\n'} == 201 ]] || die "the order failed: $out"
	placed=$(now_ms)
	ORDER_ID=$(jq -r .orderId <<<"${out%$'\n'*}")
	deadline=$((start + 30000))
	while :; do
		after=$(stock_of "$base" "$sku") || after='?'
		[[ $after == "$((before - 1))" ]] && break
		(($(now_ms) < deadline)) || die "the stock of $sku stayed $after (was $before) for 30 s after order $ORDER_ID: inventory never got order.placed (kubectl logs -n $NS deploy/inventory)"
		sleep 0.05
	done
	echo "    order $ORDER_ID → stock: $(($(now_ms) - start)) ms (through NATS; the order's own answer took $((placed - start)) ms), $sku $before -> $after"
}

# The orders live in PostgreSQL: new pods, the same orders.
survive() {
	local base=http://$STOREFRONT_IP:80 out
	log "deleting the orders pods (kubectl delete pod -l app.kubernetes.io/name=orders)"
	kubectl delete pod -n "$NS" -l app.kubernetes.io/name=orders --wait | sed 's/^/    /'
	local deadline=$((SECONDS + 60))
	until kubectl get pod -n "$NS" -l app.kubernetes.io/name=orders -o name 2>/dev/null | grep -q .; do
		((SECONDS < deadline)) || die "no new orders pods within 60s"
		sleep 1
	done
	kubectl wait --for=condition=Ready pod -n "$NS" -l app.kubernetes.io/name=orders --timeout=120s |
		sed 's/^/    /' || {
		kubectl get pods -n "$NS" -l app.kubernetes.io/name=orders -o wide >&2
		die "the new orders pods are not Ready within 120s"
	}
	deadline=$((SECONDS + 60))
	until out=$(curl -sS -m 5 -w '\n%{http_code}' "$base/api/orders/$ORDER_ID") && [[ ${out##*$'\n'} == 200 ]]; do
		((SECONDS < deadline)) || die "order $ORDER_ID is not there after the restart: $out"
		sleep 1
	done
	echo "    GET /api/orders/$ORDER_ID -> 200 $(jq -c '{orderId, status, placedAt}' <<<"${out%$'\n'*}")"
	log "order $ORDER_ID survived new orders pods (kept in PostgreSQL)"
}

report() {
	section "kubectl get msc -o wide (the class: cluster-scoped, its users and policy violations)"
	kubectl get msc -o wide
	section "kubectl get ms -n $NS -o wide"
	kubectl get ms -n "$NS" -o wide
	section "what Flotilla created for each service"
	local name
	for name in "${SERVICES[@]}"; do
		echo "-- $name"
		kubectl get sa,deploy,svc,hpa,pdb,netpol,ingress -n "$NS" -l "app.kubernetes.io/instance=$name" 2>&1 | sed 's/^/   /'
	done
	section "dependency graph (flotilla graph -n $NS)"
	if "$FLOTILLA" graph --help >/dev/null 2>&1; then
		"$FLOTILLA" graph -n "$NS"
	else
		kubectl get ms -n "$NS" -o jsonpath='{range .items[*]}{.metadata.name}{" -> "}{.spec.dependsOn[*].name}{"\n"}{end}'
	fi
	section "the operator"
	echo "$OPERATOR_DESC"
	section "open the storefront"
	local external
	external=$(kubectl get ms storefront -n "$NS" -o jsonpath='{.status.externalUrl}')
	echo "external URL: ${external:-(none reported)}   (status.externalUrl, from its Ingress)"
	echo "  This cluster runs no ingress controller: the Ingress (class nginx) exists but nothing"
	echo "  serves it, so that URL answers only where ingress-nginx listens on this machine's"
	echo "  port 80 (e.g. kind with extraPortMappings; nip.io resolves it to 127.0.0.1). Here:"
	echo "curl http://$STOREFRONT_IP/                    # from this machine (ClusterIP)"
	echo "kubectl port-forward -n $NS svc/storefront 8080:80   # then http://localhost:8080/"
	echo "kubectl edit configmap storefront-config -n $NS      # change the banner: storefront rolls"
	echo "kubectl edit msc shop                               # change a class default: all six roll"
	section "watch it live"
	echo "$FLOTILLA dashboard -n $NS   # then open http://127.0.0.1:8900/"
}

cluster
images
crds
operator
database
samples
wait_ready
order
event
survive
report
log "demo ready: the shop runs in namespace $NS"
