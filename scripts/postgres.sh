# Sourced by scripts/test.sh: a throwaway PostgreSQL server for the import-relay tests.
# Debian's postgresql (installed with apt when it is missing), a cluster under
# .tools/postgres (or /tmp, when the postgres user cannot reach the checkout) initialised on
# each run, listening on 127.0.0.1 on a free port only,
# stopped by `postgres_stop` (test.sh calls it from its EXIT trap). Exports
# IMPORT_RELAY_POSTGRES_URL for the tests. A second server beside it serves TLS only with a
# certificate for 127.0.0.1 made on each run by a CA made with it (openssl), for the
# import's sslmode=require: IMPORT_RELAY_POSTGRES_TLS_URL and IMPORT_RELAY_POSTGRES_CA_FILE
# (the first server has no TLS). PostgreSQL refuses to run as root: as root, the clusters
# belong to the `postgres` user the package creates, and run as that user.

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
  port=$(postgres_cluster data "") || return 1
  export IMPORT_RELAY_POSTGRES_URL="postgres://relay@127.0.0.1:$port/postgres"

  local tls="$postgres_dir/tls"
  mkdir -p "$tls"
  (
    cd "$tls" || exit 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/CN=foundry-auth test CA" -keyout ca.key -out ca.crt \
      && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout server.key -out server.csr \
      && printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext \
      && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.crt
  ) >"$postgres_dir/openssl.log" 2>&1 || { cat "$postgres_dir/openssl.log"; return 1; }
  chmod 600 "$tls/server.key"
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$tls"
  fi
  port=$(postgres_cluster data-tls \
    "-c ssl=on -c ssl_cert_file=$tls/server.crt -c ssl_key_file=$tls/server.key") || return 1
  # TLS only: its host lines refuse a connection in plain text.
  sed -i 's/^host /hostssl /' "$postgres_dir/data-tls/pg_hba.conf"
  "${postgres_as[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data-tls" reload >/dev/null || return 1
  export IMPORT_RELAY_POSTGRES_TLS_URL="postgres://relay@127.0.0.1:$port/postgres"
  export IMPORT_RELAY_POSTGRES_CA_FILE="$tls/ca.crt"
}

# postgres_cluster DIR OPTIONS: a cluster in $postgres_dir/DIR started on a free port of
# 127.0.0.1 with the server OPTIONS; prints the port.
postgres_cluster() {
  local dir="$postgres_dir/$1" port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${postgres_as[@]}" "$postgres_bin/initdb" -D "$dir" -U relay --auth=trust --no-sync -E UTF8 >"$dir.initdb.log" 2>&1 \
    || { cat "$dir.initdb.log" >&2; return 1; }
  echo "==> starting PostgreSQL ($("$postgres_bin/postgres" --version)) on 127.0.0.1:$port (log: $dir.log)" >&2
  "${postgres_as[@]}" "$postgres_bin/pg_ctl" -D "$dir" -l "$dir.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $postgres_dir -c fsync=off $2" start >/dev/null \
    || { cat "$dir.log" >&2; return 1; }
  echo "$port"
}

postgres_stop() {
  local data
  for data in data data-tls; do
    if [ -n "${postgres_dir:-}" ] && [ -d "$postgres_dir/$data" ]; then
      "${postgres_as[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/$data" -m fast -w stop >/dev/null 2>&1 || true
    fi
  done
  if [ -n "${postgres_temporary:-}" ]; then
    rm -rf "$postgres_dir"
  fi
}
