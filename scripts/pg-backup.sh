#!/usr/bin/env bash
# Back up Worklane's PostgreSQL database: its roles and one consistent dump of the database.
#
#   scripts/pg-backup.sh SUPERUSER_URL DIRECTORY
#
# SUPERUSER_URL  a superuser's connection to the database to back up, e.g.
#                postgresql://postgres@db.internal/worklane (a password may come from ~/.pgpass
#                or PGPASSWORD). A superuser, because the roles' password hashes are readable
#                by superusers only, and because the tables force row-level security: any
#                other role without BYPASSRLS would dump no rows.
# DIRECTORY      where the backup goes: DIRECTORY/<database>-<UTC time>/ holding
#                  roles.sql      the roles the database uses (owner, app role: attributes,
#                                 password hashes, memberships), without the cluster's superuser
#                  database.dump  pg_dump's custom format: schema, rows, owners, grants,
#                                 row-level security policies, in one snapshot
#                  SHA256SUMS     checked by scripts/pg-restore.sh before it restores anything
#                The directory appears complete or not at all; its path is printed last.
#
# A logical dump, not a base backup with WAL archiving: it restores into any new cluster of
# the same or a newer major version, and checks itself as it is read back. It loses what was
# written after it started (restore point = the last backup); see docs/operations.md.
set -euo pipefail

die() { echo "pg-backup: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 SUPERUSER_URL DIRECTORY"
URL=${1/postgresql+psycopg:/postgresql:}
DIRECTORY=$2

# shellcheck source=scripts/pg-tools.sh
. "$(dirname "$0")/pg-tools.sh"
PSQL=$(pg_tool psql)
PG_DUMP=$(pg_tool pg_dump)
PG_DUMPALL=$(pg_tool pg_dumpall)

query() { "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$URL" -c "$1"; }
[ "$(query "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")" = t ] \
  || die "connect as a superuser (see the comment at the top of $0)"
DATABASE=$(query "SELECT current_database()")
SUPERUSER=$(query "SELECT rolname FROM pg_roles WHERE oid = 10")  # the cluster's own, made by initdb

mkdir -p "$DIRECTORY"
NAME="$DATABASE-$(date -u +%Y%m%dT%H%M%SZ)"
PARTIAL=$(mktemp -d "$DIRECTORY/.$NAME.XXXXXX")
trap 'rm -rf "$PARTIAL"' EXIT

# Every role but the cluster's superuser, which a new cluster has already.
"$PG_DUMPALL" -d "$URL" --roles-only --quote-all-identifiers \
  | grep -v -E "^(CREATE|ALTER) ROLE \"$SUPERUSER\"( |;)" >"$PARTIAL/roles.sql"
"$PG_DUMP" -d "$URL" --format=custom --compress=6 --file="$PARTIAL/database.dump"

(cd "$PARTIAL" && sha256sum roles.sql database.dump >SHA256SUMS)
chmod 700 "$PARTIAL"  # roles.sql holds password hashes
mv "$PARTIAL" "$DIRECTORY/$NAME"
trap - EXIT
echo "$DIRECTORY/$NAME"
