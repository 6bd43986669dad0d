#!/bin/sh
# One-shot (temporalio/admin-tools): creates Temporal's two databases and brings their schemas to the
# version this admin-tools image ships. Safe to run on every `up`: `create` ignores an existing
# database, `setup-schema -v 0.0` keeps a newer recorded version, `update-schema` applies only what is
# missing (which is also how a Temporal upgrade migrates: bump the image tags, `up` again).
set -eu

: "${POSTGRES_SEEDS:=postgres}"
: "${DB_PORT:=5432}"
: "${DBNAME:=temporal}"
: "${VISIBILITY_DBNAME:=temporal_visibility}"
: "${SCHEMA_DIR:=/etc/temporal/schema/postgresql/v12}"
# temporal-sql-tool reads the password from SQL_PASSWORD (kept off the command line).
export SQL_PASSWORD="${POSTGRES_PWD:?POSTGRES_PWD is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"

echo "setup-schema: waiting for ${POSTGRES_SEEDS}:${DB_PORT}"
i=0
until nc -z -w 5 "$POSTGRES_SEEDS" "$DB_PORT"; do
  i=$((i + 1))
  if [ "$i" -ge 60 ]; then echo "setup-schema: postgres did not answer" >&2; exit 1; fi
  sleep 2
done

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

for pair in "${DBNAME}:temporal" "${VISIBILITY_DBNAME}:visibility"; do
  db="${pair%%:*}"
  dir="${SCHEMA_DIR}/${pair##*:}/versioned"
  echo "setup-schema: ${db} (${dir})"
  sql --db "$db" create
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$dir"
done

echo "setup-schema: done"
