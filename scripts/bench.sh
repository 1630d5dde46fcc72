#!/usr/bin/env bash
# The benchmark (not part of the tests, which never time anything). Builds release, then
# prints one table, every figure beside its baseline measured in the same run:
#   - init of each function (process start to its first request for work, median of N
#     starts under a fake Lambda Runtime API on 127.0.0.1) against a bare lambda_http
#     hello world built beside it with the same profile;
#   - the local server (embedded store, THROTTLING=off) under wrk: throughput and p50/p99
#     latency per route, user-data against a bare axum server answering a small JSON body;
#   - POST /auth/verify under wrk on a second local server (a fresh service key's digest,
#     request caps raised out of reach): the master key counted, then with "count": false,
#     each against user-data of the same run;
#   - login over one connection against one argon2 hash of the policy;
#   - wrong passwords (median of 20 each, interleaved, the login operation in process):
#     for an unknown email, an argon2id account and a relay bcrypt account not yet
#     upgraded, against one argon2id and one bcrypt verification (the work each is made
#     of), and whether [profile.release] builds the password crates at opt-level 3;
#   - peak resident memory of the local server after 64 concurrent logins;
#   - the stripped size of every function binary.
# Each function is built on its own (`cargo build -p NAME`), so it links only the features
# it asks for. Needs wrk (installed with apt-get when missing and running as root).
# Settings: BENCH_SECONDS (per wrk run, default 10), BENCH_STARTS (cold starts per binary,
# default 21).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${BENCH_SECONDS:-10}
starts=${BENCH_STARTS:-21}
target="${CARGO_TARGET_DIR:-$PWD/target}/release"
functions=(register login regenerate-key user-data export-data delete-account change-password forgot-password
  reset-password validate-reset-token create-api-key list-api-keys delete-api-key authorizer verify)
key_only=(user-data list-api-keys delete-api-key authorizer)

root=$PWD
source scripts/lib.sh
use_pinned_toolchain
command -v wrk >/dev/null || apt_install wrk

echo "==> building release (each function on its own, with its own features)" >&2
for f in "${functions[@]}"; do
  cargo build --release --quiet -p "$f"
done
cargo build --release --quiet -p local -p benchmarks

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 | $5 |"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
within() { awk -v a="$1" -v b="$2" -v k="$3" 'BEGIN { exit !(a <= b * k) }' && echo yes || echo NO; }

# ---- cold starts ---------------------------------------------------------------------
echo "==> cold starts ($starts each, interleaved)" >&2
mkdir -p "$work/home"
binaries=("$target/bare-lambda")
for f in "${functions[@]}"; do binaries+=("$target/$f"); done
# The settings a deployed function has; an empty HOME, as on Lambda (no ~/.aws files).
inits=$(env -i PATH="$PATH" HOME="$work/home" \
  AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench AWS_SESSION_TOKEN=bench \
  USERS_TABLE=users SCOPED_KEYS_TABLE=scoped RESET_TOKENS_TABLE=tokens THROTTLE_TABLE=throttle ACTIVITY_TABLE=activity \
  KMS_KEY_ID=alias/auth EMAIL_FROM=no-reply@example.com RESET_URL=https://relay.example.com/reset \
  "$target/cold-start" "$starts" "${binaries[@]}")
bare_init=$(awk -v b="$target/bare-lambda" '$2 == b { print $1 }' <<<"$inits")
for f in "${functions[@]}"; do
  ms=$(awk -v b="$target/$f" '$2 == b { print $1 }' <<<"$inits")
  row "init \`$f\` (median of $starts)" "$ms ms" "bare lambda_http $bare_init ms" "$(ratio "$ms" "$bare_init")" \
    "≤ 1.5x: $(within "$ms" "$bare_init" 1.5)"
done

# ---- the local server under wrk ------------------------------------------------------
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}
# wrk_run NAME CONNECTIONS URL [LUA]: leaves "req/s p50_ms p99_ms non2xx answered" in $work/NAME.
wrk_run() {
  local name=$1 conns=$2 url=$3 script=${4:-}
  local threads=$((conns < 2 ? 1 : 2))
  wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency ${script:+-s "$script"} "$url" >"$work/$name.out"
  awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
      return v
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    /Non-2xx/ { bad = $NF }
    / requests in / { answered = $1 }
    END { printf "%d %.2f %.2f %d %d\n", rps, p50, p99, bad, answered }' "$work/$name.out" >"$work/$name"
}
figures() { read -r rps p50 p99 bad answered <"$work/$1"; }

echo "==> bare axum" >&2
"$target/bare-axum" 127.0.0.1:3901 >/dev/null 2>&1 &
pids+=($!)
wait_port 3901
wrk_run bare 16 http://127.0.0.1:3901/auth/user-data
kill "${pids[-1]}"

echo "==> the local server" >&2
THROTTLING=off "$target/local" --listen 127.0.0.1:3902 --data "$work/data" >"$work/local.log" 2>&1 &
local_pid=$!
pids+=("$local_pid")
wait_port 3902
base=http://127.0.0.1:3902
key=$(curl -sf "$base/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"Dragon-Hoard-2026"}' | sed -E 's/.*"apiKey":"([^"]+)".*/\1/')
for n in 1 2 3; do
  curl -sf "$base/auth/api-keys" -H "x-api-key: $key" -H 'content-type: application/json' \
    -d "{\"name\":\"bench $n\",\"monthlyLimit\":500}" >/dev/null
done
cat >"$work/key.lua" <<EOF
wrk.headers["x-api-key"] = "$key"
EOF
cat >"$work/login.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"Dragon-Hoard-2026"}'
EOF
cat >"$work/register.lua" <<'EOF'
-- A new email for every request: each wrk thread gets its own number from setup().
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/auth/register", { ["content-type"] = "application/json" },
    '{"email":"bench-' .. id .. '-' .. n .. '@example.com","password":"Dragon-Hoard-2026"}')
end
EOF

echo "==> user-data, api-keys, login, register" >&2
wrk_run user-data 16 "$base/auth/user-data" "$work/key.lua"
wrk_run api-keys 16 "$base/auth/api-keys" "$work/key.lua"
wrk_run login 8 "$base/auth/login" "$work/login.lua"
wrk_run register 8 "$base/auth/register" "$work/register.lua"
echo "==> login over one connection, one argon2 hash" >&2
hash_ms=$("$target/argon2-hash" 21)
wrk_run login-1 1 "$base/auth/login" "$work/login.lua"
echo "==> wrong passwords: an unknown email, an argon2id account, a relay bcrypt account" >&2
"$target/wrong-passwords" "$work/wrong-data" 20 >"$work/wrong"
echo "==> 64 concurrent logins" >&2
wrk_run login-64 64 "$base/auth/login" "$work/login.lua"
peak_kb=$(awk '/VmHWM/ { print $2 }' "/proc/$local_pid/status")

echo "==> verify (a second local server: a service key, caps out of reach)" >&2
read -r service_key service_digest < <("$target/local" --new-service-key |
  awk '/^service key:/ { k = $3 } /^digest:/ { d = $2 } END { print k, d }')
THROTTLING=off MONTHLY_REQUEST_LIMIT=1000000000 DAILY_REQUEST_LIMIT=1000000000 "$target/local" \
  --listen 127.0.0.1:3903 --data "$work/verify-data" --service-key-digest "$service_digest" \
  >"$work/verify.log" 2>&1 &
pids+=($!)
wait_port 3903
verify_base=http://127.0.0.1:3903
verify_key=$(curl -sf "$verify_base/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"Dragon-Hoard-2026"}' | sed -E 's/.*"apiKey":"([^"]+)".*/\1/')
# verify_once BODY: one answer, which must be valid; leaves its requestsThisMonth in $counted.
verify_once() {
  local answer
  answer=$(curl -sf "$verify_base/auth/verify" -H "authorization: Bearer $service_key" \
    -H 'content-type: application/json' -d "$1")
  if [[ $answer != *'"valid":true'* ]]; then
    echo "verify answered $answer" >&2
    return 1
  fi
  counted=$(sed -E 's/.*"requestsThisMonth":([0-9]+).*/\1/' <<<"$answer")
}
counting="{\"key\":\"$verify_key\"}"
not_counting="{\"key\":\"$verify_key\",\"count\":false}"
for mode in counting not_counting; do
  cat >"$work/verify-$mode.lua" <<EOF
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $service_key"
wrk.headers["content-type"] = "application/json"
wrk.body = '${!mode}'
EOF
done
# Counted, every answered request adds one (a refusal would add none); not counted,
# nothing moves.
verify_once "$not_counting"
before=$counted
wrk_run verify 16 "$verify_base/auth/verify" "$work/verify-counting.lua"
verify_once "$not_counting"
figures verify
verify_counted=$((counted - before))
verify_valid=$([ "$verify_counted" -ge "$answered" ] && echo yes || echo NO)
before=$counted
wrk_run verify-not-counting 16 "$verify_base/auth/verify" "$work/verify-not_counting.lua"
verify_once "$not_counting"
not_counting_valid=$([ "$counted" -eq "$before" ] && echo yes || echo NO)

figures bare
bare_rps=$rps
figures user-data
row "GET /auth/user-data, 16 connections" "$rps req/s (p50 $p50 ms, p99 $p99 ms)" \
  "bare axum $bare_rps req/s" "$(awk -v a="$rps" -v b="$bare_rps" 'BEGIN { printf "%.0f%%", 100 * a / b }')" \
  "≥ 50%: $(within 0.5 "$(awk -v a="$rps" -v b="$bare_rps" 'BEGIN { print a / b }')" 1)"
user_data_rps=$rps
figures verify
row "POST /auth/verify (master key, counted), 16 connections" "$rps req/s (p50 $p50 ms, p99 $p99 ms)" \
  "user-data $user_data_rps req/s" "$(awk -v a="$rps" -v b="$user_data_rps" 'BEGIN { printf "%.0f%%", 100 * a / b }')" \
  "non-2xx: $bad; every answer admitted and counted: $verify_valid ($answered answered, $verify_counted counted)"
figures verify-not-counting
row "POST /auth/verify (master key, \"count\": false), 16 connections" "$rps req/s (p50 $p50 ms, p99 $p99 ms)" \
  "user-data $user_data_rps req/s" "$(awk -v a="$rps" -v b="$user_data_rps" 'BEGIN { printf "%.0f%%", 100 * a / b }')" \
  "non-2xx: $bad; nothing counted: $not_counting_valid"
figures api-keys
row "GET /auth/api-keys (3 keys), 16 connections" "$rps req/s (p50 $p50 ms, p99 $p99 ms)" "" "" ""
figures login
row "POST /auth/login, 8 connections" "$rps req/s (p50 $p50 ms, p99 $p99 ms)" "" "" "non-2xx: $bad"
figures register
row "POST /auth/register, 8 connections" "$rps req/s (p50 $p50 ms, p99 $p99 ms)" "" "" "non-2xx: $bad"
figures login-1
row "POST /auth/login, 1 connection" "p50 $p50 ms (p99 $p99 ms, $rps req/s)" "one argon2 policy hash $hash_ms ms" \
  "$(ratio "$p50" "$hash_ms")" "≤ 1.5x: $(within "$p50" "$hash_ms" 1.5)"
figures login-64
row "POST /auth/login, 64 connections" "$rps req/s (p50 $p50 ms, p99 $p99 ms)" "" "" "non-2xx (shed, 503): $bad"
# wrong_ms NAME: a median of the wrong-passwords run.
wrong_ms() { awk -F '\t' -v n="$1" '$1 == n { print $2 }' "$work/wrong"; }
argon2_ms=$(wrong_ms "one argon2id verification (policy)")
bcrypt_ms=$(wrong_ms "one bcrypt verification (cost 10)")
both_ms=$(awk -v a="$argon2_ms" -v b="$bcrypt_ms" 'BEGIN { print a + b }')
cases=("unknown email" "argon2id account" "relay bcrypt account")
slowest=$(for c in "${cases[@]}"; do wrong_ms "$c"; done | sort -g | tail -1)
fastest=$(for c in "${cases[@]}"; do wrong_ms "$c"; done | sort -g | head -1)
for c in "${cases[@]}"; do
  ms=$(wrong_ms "$c")
  row "wrong password, $c (login, median of 20)" "$ms ms" "argon2id $argon2_ms + bcrypt $bcrypt_ms ms" \
    "$(ratio "$ms" "$both_ms")" "slowest case ≤ 1.1x fastest: $(within "$slowest" "$fastest" 1.1)"
done
# A profile setting once halved argon2's speed unseen: the password crates (and the
# crates their inner loops live in) must be built at opt-level 3 in the release profile.
opt3() {
  awk -v p="[profile.release.package.$1]" '$0 == p { getline; found = ($0 ~ /^opt-level *= *3$/) }
    END { print found ? "yes" : "NO" }' Cargo.toml
}
row "opt-level 3 for the password crates in [profile.release]" \
  "argon2 $(opt3 argon2), blake2 $(opt3 blake2), bcrypt $(opt3 bcrypt), blowfish $(opt3 blowfish)" "" "" ""
peak_mb=$(awk -v k="$peak_kb" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }')
row "peak RSS of the local server (VmHWM, over all runs above)" "$peak_mb MB" "" "" "≤ 150 MB: $(within "$peak_mb" 150 1)"

# ---- sizes ---------------------------------------------------------------------------
bare_mb=$(awk -v s="$(stat -c %s "$target/bare-lambda")" 'BEGIN { printf "%.2f", s / 1e6 }')
for f in "${functions[@]}"; do
  mb=$(awk -v s="$(stat -c %s "$target/$f")" 'BEGIN { printf "%.2f", s / 1e6 }')
  limit=8
  for k in "${key_only[@]}"; do [ "$k" = "$f" ] && limit=6.5; done
  row "size \`$f\` (stripped)" "$mb MB" "bare lambda_http $bare_mb MB" "" "≤ $limit MB: $(within "$mb" "$limit" 1)"
done

echo
echo "| measure | this service | baseline, same run | ratio | budget |"
echo "| --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
