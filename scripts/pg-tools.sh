# Sourced by scripts/pg-backup.sh and scripts/pg-restore.sh (which define `die`).
# shellcheck shell=bash
pg_tool() {  # the newest installed client tools (as scripts/test.sh finds the server's)
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/$1" ] && { echo "$dir/$1"; return 0; }
  done
  command -v "$1" || die "$1 not found; install the PostgreSQL client (postgresql-client)"
}
