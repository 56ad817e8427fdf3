#!/usr/bin/env bash
# Starts the services the test suite needs when they are not running.
# PostgreSQL: the suite expects 127.0.0.1:5432 with trust auth and a database `test`.
set -u
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if command -v pg_isready >/dev/null && ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    for v in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true
    done
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if command -v pg_isready >/dev/null && pg_up; then
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
  echo "services: PostgreSQL up on 127.0.0.1:5432"
else
  echo "services: WARNING PostgreSQL could not be started; PostgreSQL tests will be skipped" >&2
fi
exit 0
