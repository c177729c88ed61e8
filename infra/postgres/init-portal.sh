#!/bin/sh
# First start of the postgres container only (docker-entrypoint-initdb.d): create the
# portal's database and its two roles the way portal/dbsetup.py does for tests:
#   portal_owner  owns the schema; migrations connect as it (MIGRATION_DATABASE_URL)
#   portal_app    owns nothing, NOSUPERUSER NOBYPASSRLS, so row-level security applies
#                 to every query of the web and worker processes (DATABASE_URL)
set -eu
: "${PORTAL_OWNER_PASSWORD:?set PORTAL_OWNER_PASSWORD}"
: "${PORTAL_APP_PASSWORD:?set PORTAL_APP_PASSWORD}"
PORTAL_DB="${PORTAL_DB:-portal}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v owner_pw="$PORTAL_OWNER_PASSWORD" -v app_pw="$PORTAL_APP_PASSWORD" -v db="$PORTAL_DB" <<'SQL'
create role portal_owner login password :'owner_pw' nosuperuser nobypassrls nocreatedb nocreaterole;
create role portal_app login password :'app_pw' nosuperuser nobypassrls nocreatedb nocreaterole;
create database :"db" owner portal_owner;
revoke all on database :"db" from public;
grant connect, temporary on database :"db" to portal_app;
\connect :"db"
alter schema public owner to portal_owner;
revoke create on schema public from public;
grant usage on schema public to portal_app;
SQL
