# Sourced by scripts/test.sh: a throwaway PostgreSQL server for the import-relay tests.
# Debian's postgresql (installed with apt when it is missing), a cluster under
# .tools/postgres (or /tmp, when the postgres user cannot reach the checkout) initialised on
# each run, listening on 127.0.0.1 on a free port only,
# stopped by `postgres_stop` (test.sh calls it from its EXIT trap). Exports
# IMPORT_RELAY_POSTGRES_URL for the tests. PostgreSQL refuses to run as root: as root, the
# cluster belongs to the `postgres` user the package creates, and runs as that user.

postgres_start() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1) || true
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    apt_install postgresql || return 1
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  fi
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    as=(runuser -u postgres --)
  fi
  postgres_dir="$root/.tools/postgres"
  postgres_bin="$bin"
  postgres_as=("${as[@]}")
  rm -rf "$postgres_dir"
  mkdir -p "$postgres_dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$postgres_dir"
    # A checkout the postgres user cannot reach (under /root, say): a directory in /tmp.
    if ! runuser -u postgres -- test -w "$postgres_dir"; then
      rm -rf "$postgres_dir"
      postgres_dir=$(mktemp -d /tmp/foundry-auth-postgres.XXXXXX)
      postgres_temporary=1
      chown postgres: "$postgres_dir"
    fi
  fi
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${as[@]}" "$bin/initdb" -D "$postgres_dir/data" -U relay --auth=trust --no-sync -E UTF8 >"$postgres_dir/initdb.log" 2>&1 \
    || { cat "$postgres_dir/initdb.log"; return 1; }
  echo "==> starting PostgreSQL ($("$bin/postgres" --version)) on 127.0.0.1:$port (log: $postgres_dir/server.log)"
  "${as[@]}" "$bin/pg_ctl" -D "$postgres_dir/data" -l "$postgres_dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $postgres_dir -c fsync=off" start >/dev/null \
    || { cat "$postgres_dir/server.log"; return 1; }
  export IMPORT_RELAY_POSTGRES_URL="postgres://relay@127.0.0.1:$port/postgres"
}

postgres_stop() {
  if [ -n "${postgres_dir:-}" ] && [ -d "$postgres_dir/data" ]; then
    "${postgres_as[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "${postgres_temporary:-}" ]; then
    rm -rf "$postgres_dir"
  fi
}
