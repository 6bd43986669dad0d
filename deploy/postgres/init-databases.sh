#!/bin/sh
# Runs once, when the postgres container initialises an empty data volume (docker-entrypoint-initdb.d).
# One server, two owners:
#   - DOCKET_DB_USER owns DOCKET_DB_NAME (the API runs its migrations as that role at start);
#   - TEMPORAL_DB_USER may create databases: temporal-schema (admin-tools) creates and migrates
#     `temporal` and `temporal_visibility` as that role.
# Changing a password later needs `ALTER ROLE … PASSWORD …`: this script does not run again.
set -eu

: "${DOCKET_DB_USER:=docket}"
: "${DOCKET_DB_PASSWORD:=docket}"
: "${DOCKET_DB_NAME:=docket}"
: "${TEMPORAL_DB_USER:=temporal}"
: "${TEMPORAL_DB_PASSWORD:=temporal}"

# Values go in as psql variables (:'x' quotes a literal, format('%I') an identifier): no quoting bugs
# with passwords that contain quotes or spaces. \gexec runs each generated statement (CREATE DATABASE
# cannot run inside a DO block).
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
  -v docket_user="$DOCKET_DB_USER" -v docket_pw="$DOCKET_DB_PASSWORD" -v docket_db="$DOCKET_DB_NAME" \
  -v temporal_user="$TEMPORAL_DB_USER" -v temporal_pw="$TEMPORAL_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'docket_user', :'docket_pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'docket_user')
\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'docket_db', :'docket_user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'docket_db')
\gexec
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'temporal_user', :'temporal_pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'temporal_user')
\gexec
SQL

echo "init-databases: role ${DOCKET_DB_USER} owns database ${DOCKET_DB_NAME}; role ${TEMPORAL_DB_USER} may create databases"
