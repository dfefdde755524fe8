#!/usr/bin/env bash
# PostgreSQL on this machine, for the sample shop's orders (`make demo`,
# e2e/tests/samples.rs): the stand-in for a managed database. A platform team's databases
# usually live outside the cluster, and this single node has no storage class for one
# inside. It listens on loopback and on the address pods reach this machine at (the
# embedded cluster's bridge, kind's network gateway), on port $PG_PORT (55432, so it never
# clashes with a system PostgreSQL), password (scram-sha-256) logins from anywhere.
#
#   postgres.sh up              install Debian's postgresql if needed, initdb, start;
#                               does nothing when already running
#   postgres.sh down            stop it (make cluster-down does)
#   postgres.sh database NAME   role and database NAME, made if missing, with a new random
#                               password (or $PASSWORD when set: an earlier one, kept);
#                               prints the connection as one JSON object:
#                               {uri, host, port, username, password, dbname}
#   postgres.sh drop NAME       drop database and role NAME (a test's, at its end)
#   postgres.sh status          running or not, where; exit 3 when not running
#
# Progress goes to stderr: stdout carries only what `database` prints.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=e2e/cluster/lib.sh
source "$HERE/lib.sh"

PG_PORT=${PG_PORT:-55432}

note() { log "$@" >&2; }

# The newest installed server's bin directory (Debian keeps them out of PATH).
pg_bin() {
	local dir
	dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)
	[[ -n $dir && -x $dir/initdb ]] || return 1
	echo "$dir"
}

# as_pg CMD...: runs CMD as the server's user. PostgreSQL refuses to run as root, so as
# root that is the `postgres` user Debian's package creates; otherwise the caller.
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# The server's directory (data, socket, log): $CLUSTER_DIR/postgres, unless the server's
# user cannot reach it: $CLUSTER_DIR is usually in root's home, which is closed to other
# users (mode 0700), and then it is in the postgres user's own home, where Debian keeps
# its clusters.
pg_dir() {
	local probe=$CLUSTER_DIR
	until [[ -d $probe ]]; do probe=$(dirname "$probe"); done
	if [[ $(id -u) -ne 0 ]] || runuser -u postgres -- test -x "$probe" 2>/dev/null; then
		echo "$CLUSTER_DIR/postgres"
	else
		echo /var/lib/postgresql/flotilla
	fi
}

# The address pods reach this machine at.
pod_host_ip() {
	if [[ $CLUSTER == kind ]]; then
		docker network inspect kind -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' 2>/dev/null |
			tr ' ' '\n' | grep -m1 -E '^[0-9]+(\.[0-9]+){3}$' || true
	else
		echo "$HOST_IP"
	fi
}

ip_assigned() { ip -o -4 addr show 2>/dev/null | grep -q " inet $1/"; }

running() { as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

answers_on() { "$BIN/pg_isready" -q -h "$1" -p "$PG_PORT" -t 3; }

# psql_admin ARGS...: psql as the superuser, over the server's own socket.
psql_admin() {
	as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR/run" -p "$PG_PORT" -d postgres "$@"
}

init() {
	[[ -f $DATA/PG_VERSION ]] && return
	note "creating a PostgreSQL data directory in $DATA"
	mkdir -p "$DIR"
	[[ $(id -u) -ne 0 ]] || chown postgres: "$DIR"
	# Local (socket) logins by OS user only; TCP logins by password, from any address.
	as_pg "$BIN/initdb" -D "$DATA" -E UTF8 --locale C --auth-local peer \
		--auth-host scram-sha-256 >"$DIR/initdb.log" 2>&1 || {
		show_tail "$DIR/initdb.log" >&2
		die "initdb failed (log: $DIR/initdb.log)"
	}
	as_pg sh -c "printf '%s\n' 'host all all 0.0.0.0/0 scram-sha-256' 'host all all ::/0 scram-sha-256' >>'$DATA/pg_hba.conf'"
}

up() {
	local ip listen=localhost
	ip=$(pod_host_ip)
	if running; then
		if [[ -z $ip ]] || answers_on "$ip" || ! ip_assigned "$ip"; then
			note "PostgreSQL already running ($(where))"
			return
		fi
		# Started before the cluster's network was there: start again to listen on it.
		note "PostgreSQL runs but not on $ip: restarting it to listen there too"
		as_pg "$BIN/pg_ctl" -D "$DATA" -w -m fast stop >&2
	fi
	init
	if [[ -n $ip ]] && ip_assigned "$ip"; then
		listen+=",$ip"
	else
		note "warning: ${ip:-the address pods reach} is not on this machine yet (is the cluster up?): listening on loopback only"
	fi
	as_pg mkdir -p "$DIR/run"
	note "starting PostgreSQL on $listen port $PG_PORT (data $DATA, log $DIR/postgres.log)"
	# Addresses and port on the command line, not in postgresql.conf: they follow the
	# cluster's network at every start.
	as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -w -t 60 \
		-o "-c port=$PG_PORT -c listen_addresses='$listen' -c unix_socket_directories='$DIR/run'" \
		start >/dev/null || {
		show_tail "$DIR/postgres.log" >&2
		die "PostgreSQL did not start (log: $DIR/postgres.log)"
	}
}

down() {
	if ! running; then
		note "PostgreSQL is not running"
		return
	fi
	note "stopping PostgreSQL ($DATA)"
	as_pg "$BIN/pg_ctl" -D "$DATA" -w -m fast stop >/dev/null
}

where() {
	local pid
	pid=$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || echo '?')
	echo "pid $pid, port $PG_PORT, listening on $(psql_admin -At -c 'SHOW listen_addresses' 2>/dev/null || echo '?'), data $DATA"
}

valid_name() {
	[[ $1 =~ ^[a-z_][a-z0-9_]{0,62}$ ]] ||
		die "database name '$1': lowercase letters, digits and _, at most 63, not starting with a digit"
}

database() {
	local name=$1 password host
	valid_name "$name"
	running || die "PostgreSQL is not running: run $0 up first"
	# Letters and digits only: the password goes into a URI unescaped.
	password=${PASSWORD:-$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)}
	[[ $password =~ ^[A-Za-z0-9]{12,}$ ]] || die "PASSWORD: at least 12 letters and digits"
	psql_admin -v name="$name" -v password="$password" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
ALTER ROLE :"name" WITH LOGIN PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SQL
	host=$(pod_host_ip)
	if [[ -z $host ]] || ! answers_on "$host"; then
		note "warning: not listening on ${host:-the address pods reach}; printing 127.0.0.1, which pods cannot reach"
		host=127.0.0.1
	fi
	local what=reset
	[[ -z ${PASSWORD:-} ]] || what=kept
	note "database $name ready for user $name at $host:$PG_PORT (password $what)"
	jq -cn --arg host "$host" --arg port "$PG_PORT" --arg name "$name" --arg password "$password" '{
		uri: "postgresql://\($name):\($password)@\($host):\($port)/\($name)",
		host: $host, port: $port, username: $name, password: $password, dbname: $name}'
}

drop() {
	local name=$1
	valid_name "$name"
	running || return 0
	psql_admin -v name="$name" >/dev/null <<'SQL'
DROP DATABASE IF EXISTS :"name" WITH (FORCE);
DROP ROLE IF EXISTS :"name";
SQL
	note "dropped database and role $name"
}

status() {
	if running; then
		echo "PostgreSQL running: $(where)"
	else
		echo "PostgreSQL not running (data $DATA)"
		exit 3
	fi
}

main() {
	local command=${1:-}
	case $command in
	up | down | status) [[ $# -eq 1 ]] || die "usage: $0 $command" ;;
	database | drop) [[ $# -eq 2 ]] || die "usage: $0 $command NAME" ;;
	*) die "usage: $0 up|down|status|database NAME|drop NAME" ;;
	esac
	if ! BIN=$(pg_bin); then
		case $command in
		down | drop) return 0 ;;
		status) echo "PostgreSQL is not installed" && exit 3 ;;
		database) die "PostgreSQL is not installed: run $0 up first" ;;
		esac
		note "installing PostgreSQL (apt-get install postgresql)"
		apt_install postgresql || die "cannot install postgresql (apt-get install postgresql)"
		BIN=$(pg_bin) || die "postgresql is installed but no initdb under /usr/lib/postgresql/*/bin"
	fi
	command -v jq >/dev/null || apt_install jq || die "jq is required"
	DIR=$(pg_dir)
	DATA=$DIR/data
	"$command" "${@:2}"
}

main "$@"
