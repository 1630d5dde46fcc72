#!/usr/bin/env bash
# The OpenAPI description against the API (issue 12):
#   1. the document the code generates (`local --print-openapi`) must be the committed
#      openapi.json; regenerate it with
#          cargo run -q -p local -- --print-openapi > openapi.json
#   2. Schemathesis (installed into .tools/schemathesis) fuzzes a `local` server, started on
#      a free 127.0.0.1 port with a temporary data directory and THROTTLING=off, and stopped
#      again, also on failure: every operation with its examples, positive and negative
#      generated cases (coverage and fuzzing phases) and a stateful run that follows the
#      document's links (register, then the returned key), with every check.
# Bounded by OPENAPI_FUZZ_EXAMPLES cases per operation (default 40) and OPENAPI_FUZZ_SECONDS
# (default 180). A failing run prints its seed: OPENAPI_FUZZ_SEED=<seed> replays it.
# Called by scripts/test.sh; runs on its own too.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

source scripts/lib.sh
install_venv schemathesis requirements-openapi.txt
venv="$root/.tools/schemathesis"
python="$venv/bin/python"

# The same build as scripts/test.sh's (so nothing is rebuilt there), which includes `local`.
cargo build --workspace --quiet
target=$(cargo metadata --format-version 1 --no-deps | "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
local_bin="$target/debug/local"

echo "==> openapi.json is what the code generates"
generated=$(mktemp)
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$generated" "$work"
}
trap cleanup EXIT INT TERM
"$local_bin" --print-openapi >"$generated"
if ! cmp -s "$generated" openapi.json; then
  diff -u openapi.json "$generated" | head -n 40 >&2 || true
  echo "openapi.json differs from the document the code generates;" >&2
  echo "regenerate it: cargo run -q -p local -- --print-openapi > openapi.json" >&2
  exit 1
fi

port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
echo "==> Schemathesis against a local server on 127.0.0.1:$port"
# A service key, so that POST /auth/verify is open and fuzzed (every request carries it as
# its bearer token; the other routes ignore it).
service=$("$local_bin" --new-service-key)
service_key=$(printf '%s\n' "$service" | awk '/^service key:/ {print $3}')
service_digest=$(printf '%s\n' "$service" | awk '/^digest:/ {print $2}')
THROTTLING=off RESET_RESPONSE_FLOOR_MS=0 RUST_LOG=warn \
  "$local_bin" --listen "127.0.0.1:$port" --data "$work/data" --service-key-digest "$service_digest" \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if "$python" -c "import urllib.request; urllib.request.urlopen('$base/openapi.json')" 2>/dev/null; then
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; echo "the local server did not start" >&2; exit 1; }
  sleep 0.1
done

# The account whose master key authenticates the generated requests; its password is one
# no generated request knows, so the fuzzer cannot change, replace or delete it.
key=$("$python" - "$base" <<'PY'
import json, secrets, sys, urllib.request
password = "Fuzz-" + secrets.token_urlsafe(18) + "9a"
body = json.dumps({"email": f"fuzz-{secrets.token_hex(6)}@example.org", "password": password}).encode()
request = urllib.request.Request(sys.argv[1] + "/auth/register", data=body, headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(request))["apiKey"])
PY
)

status=0
(
  cd "$work"
  SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$root/scripts" PYTHONDONTWRITEBYTECODE=1 \
    "$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run "$base/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --header "x-api-key: $key" \
    --header "Authorization: Bearer $service_key" \
    --max-examples "${OPENAPI_FUZZ_EXAMPLES:-40}" \
    --max-time "${OPENAPI_FUZZ_SECONDS:-180}" \
    --generation-database none \
    ${OPENAPI_FUZZ_SEED:+--seed "$OPENAPI_FUZZ_SEED"} \
    --report ndjson --report-ndjson-path "$work/events.ndjson" \
    --no-color
) || status=$?

# Totals: operations, test cases and checks, counted from the run's events.
"$python" - "$work/events.ndjson" <<'PY' || true
import json, sys
checks = failed = 0
for line in open(sys.argv[1], encoding="utf-8"):
    event = json.loads(line)
    for name, body in event.items():
        if name == "ScenarioFinished":
            for check in (body.get("recorder") or {}).get("checks", {}).values():
                for result in check:
                    checks += 1
                    failed += result.get("status") == "failure"
print(f"schemathesis checks: {checks} run, {failed} failed")
PY
if [ "$status" -ne 0 ]; then
  echo "Schemathesis found failures (server log: below)" >&2
  tail -n 50 "$work/server.log" >&2
fi
exit "$status"
