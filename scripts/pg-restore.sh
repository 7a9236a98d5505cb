#!/usr/bin/env bash
# Restore a backup made by scripts/pg-backup.sh into a new PostgreSQL cluster.
#
#   scripts/pg-restore.sh BACKUP_DIRECTORY SUPERUSER_URL
#
# BACKUP_DIRECTORY  one backup: the directory pg-backup.sh printed
# SUPERUSER_URL     a superuser's connection to the NEW cluster's maintenance database, e.g.
#                   postgresql://postgres@db2.internal/postgres
#
# Checks the backup's checksums, creates the roles (they must not exist yet: a new cluster),
# creates the database with its owner and restores schema, rows, grants and row-level security
# as they were, then gathers the planner's statistics. Nothing is restored when the checksums
# do not match or the database already exists. Afterwards point DATABASE_URL (the app role) and
# DATABASE_MIGRATION_URL (the owner) at the new cluster; the passwords are those of the backup.
set -euo pipefail

die() { echo "pg-restore: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 BACKUP_DIRECTORY SUPERUSER_URL"
BACKUP=$1
URL=${2/postgresql+psycopg:/postgresql:}

# shellcheck source=scripts/pg-tools.sh
. "$(dirname "$0")/pg-tools.sh"
PSQL=$(pg_tool psql)
PG_RESTORE=$(pg_tool pg_restore)

[ -f "$BACKUP/SHA256SUMS" ] || die "$BACKUP is not a backup made by pg-backup.sh (no SHA256SUMS)"
(cd "$BACKUP" && sha256sum --check --quiet SHA256SUMS) || die "$BACKUP is damaged: checksums differ"

query() { "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$URL" -c "$1"; }
[ "$(query "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")" = t ] \
  || die "connect as a superuser of the new cluster"
DATABASE=$("$PG_RESTORE" --list "$BACKUP/database.dump" | sed -n 's/^;[[:space:]]*dbname: //p')
[ -n "$DATABASE" ] || die "cannot read the database's name from $BACKUP/database.dump"
[ -z "$(query "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" ] \
  || die "database $DATABASE exists already: restore into a new cluster (or drop it first)"

echo "pg-restore: roles" >&2
"$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$URL" --single-transaction -f "$BACKUP/roles.sql" >/dev/null
echo "pg-restore: database $DATABASE" >&2
"$PG_RESTORE" -d "$URL" --create --exit-on-error "$BACKUP/database.dump"
echo "pg-restore: statistics" >&2
"$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$URL" -c "\\connect \"$DATABASE\"" -c "ANALYZE"
echo "pg-restore: done: $DATABASE restored" >&2
