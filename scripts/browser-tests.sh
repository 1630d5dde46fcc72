#!/usr/bin/env bash
# The account holders' web pages in a real headless browser: Debian's chromium (installed
# with apt when it is missing) driven by Playwright for Python (installed into
# .tools/browser; never its own browser download), through web/tests against the `local`
# server, which the tests start on a free 127.0.0.1 port with a temporary data directory
# and stop again, also when a test fails. Called by scripts/test.sh; runs on its own too.
#
#   SCREENSHOTS_DIR=docs/screenshots scripts/browser-tests.sh   refreshes the README's pictures
#   (by default they go to .tools/screenshots)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing chromium (apt)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is missing: install Debian's chromium package (apt-get install chromium) as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

venv="$root/.tools/browser"
requirements="$root/scripts/requirements-browser.txt"
if ! cmp -s "$requirements" "$venv/requirements.txt"; then
  echo "==> installing requirements-browser.txt into .tools/browser"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi

# The same build as scripts/test.sh's (so nothing is rebuilt there), which includes `local`.
cargo build --workspace --quiet
target=$(cargo metadata --format-version 1 --no-deps | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export LOCAL_BIN="$target/debug/local"
export SCREENSHOTS_DIR="${SCREENSHOTS_DIR:-$root/.tools/screenshots}"
echo "==> the web pages in $(/usr/bin/chromium --version 2>/dev/null | head -n1) (screenshots: ${SCREENSHOTS_DIR#"$root"/})"
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -p no:cacheprovider -q web/tests
