#!/usr/bin/env bash
# A local serving cluster on one machine: a PostgreSQL server (Debian's postgresql), N API replicas
# (separate `python -m app.service` processes, each with its own uvicorn workers) sharing that database
# and one model registry, and nginx (Debian's nginx) balancing across them.
#
#   scripts/cluster.sh start  [--env FILE]   set up (.venv, postgresql, nginx), start everything, print status
#   scripts/cluster.sh status [--env FILE]   one line per component: NAME URL (and "down" when it is not running)
#   scripts/cluster.sh stop   [--env FILE]   end exactly the processes that start started
#
# Settings come from one environment file (default scripts/cluster.env). The database, the registry and
# the logs stay in CLUSTER_DIR between runs; remove that directory after `stop` to start afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

usage() {
  echo "usage: scripts/cluster.sh start|stop|status [--env FILE]" >&2
  exit 2
}
die() {
  echo "cluster: $*" >&2
  exit 1
}

COMMAND=${1:-}
[ $# -gt 0 ] && shift
ENV_FILE=scripts/cluster.env
while [ $# -gt 0 ]; do
  case $1 in
    --env) [ $# -ge 2 ] || usage; ENV_FILE=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -f "$ENV_FILE" ] || die "no environment file $ENV_FILE"
set -a
# shellcheck disable=SC1090
. "$ENV_FILE"
set +a

abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$ROOT/$1" ;; esac; }
CLUSTER_DIR=$(abspath "${CLUSTER_DIR:-.cluster}")
CLUSTER_HOST=${CLUSTER_HOST:-127.0.0.1}
CLUSTER_BALANCER_HOST=${CLUSTER_BALANCER_HOST:-127.0.0.1}
CLUSTER_BALANCER_PORT=${CLUSTER_BALANCER_PORT:-8080}
CLUSTER_REPLICAS=${CLUSTER_REPLICAS:-2}
CLUSTER_WORKERS_PER_REPLICA=${CLUSTER_WORKERS_PER_REPLICA:-1}
CLUSTER_REPLICA_BASE_PORT=${CLUSTER_REPLICA_BASE_PORT:-8100}
CLUSTER_PG_PORT=${CLUSTER_PG_PORT:-5433}
CLUSTER_PG_USER=${CLUSTER_PG_USER:-recommender}
CLUSTER_PG_DB=${CLUSTER_PG_DB:-recommender}
CLUSTER_INITIAL_MODEL=$(abspath "${CLUSTER_INITIAL_MODEL:-backend/models/latest}")
CLUSTER_START_TIMEOUT=${CLUSTER_START_TIMEOUT:-120}
export RECOMMENDER_REGISTRY_DIR=$(abspath "${RECOMMENDER_REGISTRY_DIR:-$CLUSTER_DIR/registry}")
export RECOMMENDER_DATA_DIR=$(abspath "${RECOMMENDER_DATA_DIR:-$CLUSTER_DIR/data}")
for n in CLUSTER_REPLICAS CLUSTER_WORKERS_PER_REPLICA CLUSTER_BALANCER_PORT CLUSTER_REPLICA_BASE_PORT \
  CLUSTER_PG_PORT CLUSTER_START_TIMEOUT; do
  [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number, not '${!n}' ($ENV_FILE)"
done
[ "$CLUSTER_REPLICAS" -ge 1 ] || die "CLUSTER_REPLICAS must be at least 1 ($ENV_FILE)"
case $CLUSTER_DIR in *[[:space:]]*) die "CLUSTER_DIR must not contain spaces: $CLUSTER_DIR" ;; esac

RUN=$CLUSTER_DIR/run              # what is running: the components file, logs
COMPONENTS=$RUN/components        # NAME URL PID START-TIME, one line each, in start order
PG_ROOT=$CLUSTER_DIR/postgres     # owned by the postgres user when run as root: data, socket, log
PG_DATA=$PG_ROOT/data
PGPASSFILE=$CLUSTER_DIR/pgpass
NGINX_DIR=$CLUSTER_DIR/nginx
PG_URL="postgresql://$CLUSTER_PG_USER@$CLUSTER_HOST:$CLUSTER_PG_PORT/$CLUSTER_PG_DB"

# A process is ours when its pid is alive with the start time recorded at start (pids get reused).
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  printf '%s\n' "${20}"
}
ours() { [ "$(start_time "$1" 2>/dev/null)" = "$2" ]; }

port_busy() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_http() { # URL TIMEOUT PID: until URL answers 200, or the process exits, or the time is up
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    [ -x "$d/$1" ] && { printf '%s\n' "$d/$1"; return 0; }
  done
  command -v "$1"
}
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

record() { # NAME URL PID
  local st
  st=$(start_time "$3") || die "$1 (pid $3) exited at once"
  printf '%s %s %s %s\n' "$1" "$2" "$3" "$st" >>"$COMPONENTS"
}

start_postgres() {
  local initdb pg_ctl pid
  initdb=$(pg_bin initdb) && pg_ctl=$(pg_bin pg_ctl) || die "PostgreSQL's server programs (initdb, pg_ctl) are missing: run scripts/setup.sh --cluster"
  mkdir -p "$PG_ROOT"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PG_ROOT"
    runuser -u postgres -- test -w "$PG_ROOT" ||
      die "the postgres user cannot reach $PG_ROOT: set CLUSTER_DIR to a directory every user can enter"
  fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    local pass pwfile
    pass=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    pwfile=$PG_ROOT/.initial-password
    (umask 077 && printf '%s\n' "$pass" >"$pwfile")
    [ "$(id -u)" -eq 0 ] && chown postgres: "$pwfile"
    as_postgres "$initdb" -D "$PG_DATA" -U "$CLUSTER_PG_USER" -A scram-sha-256 --pwfile="$pwfile" -E UTF8 \
      >"$PG_ROOT/initdb.log" 2>&1 || { rm -f "$pwfile"; die "initdb failed: $(tail -5 "$PG_ROOT/initdb.log")"; }
    rm -f "$pwfile"
    (umask 077 && printf '*:*:*:%s:%s\n' "$CLUSTER_PG_USER" "$pass" >"$PGPASSFILE")
  fi
  [ -f "$PGPASSFILE" ] || die "$PGPASSFILE is missing: the database's password is lost; remove $PG_ROOT to start afresh"
  as_postgres "$pg_ctl" -D "$PG_DATA" -l "$PG_ROOT/log" -w -t "$CLUSTER_START_TIMEOUT" \
    -o "-p $CLUSTER_PG_PORT -c listen_addresses=$CLUSTER_HOST -c unix_socket_directories=$PG_ROOT -c max_connections=200" \
    start >/dev/null || die "PostgreSQL did not start: $(tail -5 "$PG_ROOT/log")"
  pid=$(head -1 "$PG_DATA/postmaster.pid")
  record postgres "$PG_URL" "$pid"
  export PGPASSFILE
  if [ -z "$(psql -h "$CLUSTER_HOST" -p "$CLUSTER_PG_PORT" -U "$CLUSTER_PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$CLUSTER_PG_DB'")" ]; then
    createdb -h "$CLUSTER_HOST" -p "$CLUSTER_PG_PORT" -U "$CLUSTER_PG_USER" "$CLUSTER_PG_DB"
  fi
}

bootstrap_registry() { # a registry with no production version starts with CLUSTER_INITIAL_MODEL
  PYTHONPATH=backend .venv/bin/python - "$RECOMMENDER_REGISTRY_DIR" "$CLUSTER_INITIAL_MODEL" <<'EOF'
import sys
from app.registry.versions import Registry
registry = Registry(sys.argv[1])
if registry.production() is None:
    version = registry.register(sys.argv[2], actor="cluster.sh", reason="initial model of the cluster")
    registry.promote(version, "production", actor="cluster.sh", reason="initial model of the cluster")
    print(f"registry: {version} -> production")
EOF
}

start_replicas() {
  local i port pid
  mkdir -p "$RECOMMENDER_DATA_DIR"
  for i in $(seq 1 "$CLUSTER_REPLICAS"); do
    port=$((CLUSTER_REPLICA_BASE_PORT + i))
    # setsid: a process group per replica, so stop reaches its uvicorn workers too
    DATABASE_URL="postgresql+psycopg://$CLUSTER_PG_USER@$CLUSTER_HOST:$CLUSTER_PG_PORT/$CLUSTER_PG_DB" \
      PGPASSFILE="$PGPASSFILE" PYTHONPATH=backend OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} \
      setsid .venv/bin/python -m app.service --host "$CLUSTER_HOST" --port "$port" \
      --workers "$CLUSTER_WORKERS_PER_REPLICA" --no-access-log \
      </dev/null >"$RUN/replica-$i.log" 2>&1 &
    pid=$!
    record "replica-$i" "http://$CLUSTER_HOST:$port" "$pid"
  done
  while read -r name url pid _; do
    case $name in replica-*) ;; *) continue ;; esac
    wait_http "$url/ready" "$CLUSTER_START_TIMEOUT" "$pid" ||
      die "$name did not become ready at $url; the end of $RUN/$name.log:
$(tail -20 "$RUN/$name.log")"
  done <"$COMPONENTS"
}

write_nginx_conf() {
  local i user=""
  mkdir -p "$NGINX_DIR/tmp"
  if [ "$(id -u)" -eq 0 ]; then
    user="user nobody nogroup;"
    chown nobody "$NGINX_DIR/tmp"
  fi
  {
    cat <<EOF
# Written by scripts/cluster.sh start from $ENV_FILE; rewritten at every start.
$user
worker_processes 1;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $NGINX_DIR/tmp/body;
  proxy_temp_path $NGINX_DIR/tmp/proxy;
  fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
  uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
  scgi_temp_path $NGINX_DIR/tmp/scgi;
  # the service answers an oversized body itself (413 saying the limit); POST /events takes up to 16 MiB
  client_max_body_size 17m;
  upstream recommender {
    least_conn;
EOF
    for i in $(seq 1 "$CLUSTER_REPLICAS"); do
      # a replica that refuses a connection is skipped for 2 s, and the request goes to the next one
      echo "    server $CLUSTER_HOST:$((CLUSTER_REPLICA_BASE_PORT + i)) max_fails=1 fail_timeout=2s;"
    done
    # No pool of idle connections to the replicas: a request on a pooled connection to a replica that
    # has just died fails after it was sent, and nginx never resends a POST; a new connection to a dead
    # replica is refused before anything is sent, so the request goes to the next one.
    cat <<EOF
  }
  server {
    listen $CLUSTER_BALANCER_HOST:$CLUSTER_BALANCER_PORT;
    location / {
      proxy_pass http://recommender;
      proxy_set_header Host \$host;
      # the replicas trust X-Forwarded-For from loopback only: set, never appended, so a client
      # cannot claim to be on this machine and reach the loopback-only admin routes
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_connect_timeout 2s;
      proxy_read_timeout 120s;
      # a connection refused or reset before an answer goes to the next replica; a POST that was
      # already sent is not resent (nginx never repeats a non-idempotent request)
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
    }
  }
}
EOF
  } >"$NGINX_DIR/nginx.conf"
}

start_nginx() {
  local nginx pid
  nginx=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null) || die "nginx is missing: run scripts/setup.sh --cluster"
  write_nginx_conf
  "$nginx" -t -q -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/error.log" ||
    die "nginx refused its configuration $NGINX_DIR/nginx.conf"
  "$nginx" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/error.log" ||
    die "nginx did not start: $(tail -5 "$NGINX_DIR/error.log")"
  for _ in $(seq 50); do [ -s "$NGINX_DIR/nginx.pid" ] && break; sleep 0.1; done
  pid=$(cat "$NGINX_DIR/nginx.pid")
  record balancer "http://$CLUSTER_BALANCER_HOST:$CLUSTER_BALANCER_PORT" "$pid"
  wait_http "http://$CLUSTER_BALANCER_HOST:$CLUSTER_BALANCER_PORT/ready" 30 "$pid" ||
    die "the balancer does not answer; see $NGINX_DIR/error.log"
}

any_running() {
  [ -f "$COMPONENTS" ] || return 1
  local name url pid st
  while read -r name url pid st; do ours "$pid" "$st" && return 0; done <"$COMPONENTS"
  return 1
}

signal_one() { # NAME PID START: ask it to stop
  local name=$1 pid=$2 st=$3
  ours "$pid" "$st" || return 0
  case $name in
    postgres) as_postgres "$(pg_bin pg_ctl)" -D "$PG_DATA" -m fast -W stop >/dev/null || kill -TERM "$pid" ;;
    balancer) kill -QUIT "$pid" ;;   # graceful: requests in progress finish
    *) kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" ;;
  esac
}

wait_one() { # NAME PID START: until it has stopped; killed after 20 s
  local name=$1 pid=$2 st=$3
  for _ in $(seq 200); do ours "$pid" "$st" || return 0; sleep 0.1; done
  echo "cluster: $name (pid $pid) did not stop in 20 s: killing it" >&2
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

do_stop() {
  [ -f "$COMPONENTS" ] || return 0
  local kind name url pid st
  # the balancer first, then every replica at once, the database last
  for kind in balancer replica postgres; do
    while read -r name url pid st; do
      [[ $name == "$kind"* ]] && signal_one "$name" "$pid" "$st"
    done <"$COMPONENTS"
    while read -r name url pid st; do
      [[ $name == "$kind"* ]] && wait_one "$name" "$pid" "$st"
    done <"$COMPONENTS"
  done
  rm -f "$COMPONENTS"
}

do_status() {
  [ -f "$COMPONENTS" ] || { echo "cluster: not running ($ENV_FILE)" >&2; return 3; }
  local name url pid st down=0
  while read -r name url pid st; do
    if ours "$pid" "$st"; then echo "$name $url"; else echo "$name $url down"; down=1; fi
  done <"$COMPONENTS"
  echo "registry file://$RECOMMENDER_REGISTRY_DIR"
  return $((down * 3))
}

do_start() {
  any_running && die "already running (scripts/cluster.sh status --env $ENV_FILE); stop it first"
  rm -f "$COMPONENTS"
  local p
  for p in "$CLUSTER_PG_PORT" "$CLUSTER_BALANCER_PORT" $(seq $((CLUSTER_REPLICA_BASE_PORT + 1)) $((CLUSTER_REPLICA_BASE_PORT + CLUSTER_REPLICAS))); do
    port_busy "$CLUSTER_HOST" "$p" && die "port $p is in use; change the ports in $ENV_FILE"
  done
  scripts/setup.sh --cluster
  mkdir -p "$CLUSTER_DIR" "$RUN"
  chmod 755 "$CLUSTER_DIR"
  # whatever fails from here on, nothing that was started is left running
  trap 'echo "cluster: start failed; stopping what was started" >&2; do_stop' EXIT
  start_postgres
  bootstrap_registry
  start_replicas
  start_nginx
  trap - EXIT
  do_status
}

case $COMMAND in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) usage ;;
esac
