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

source scripts/lib.sh
[ -x /usr/bin/chromium ] || apt_install chromium
install_venv browser requirements-browser.txt
venv="$root/.tools/browser"

# The same build as scripts/test.sh's (so nothing is rebuilt there), which includes `local`.
cargo build --workspace --quiet
target=$(cargo metadata --format-version 1 --no-deps | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export LOCAL_BIN="$target/debug/local"
export SCREENSHOTS_DIR="${SCREENSHOTS_DIR:-$root/.tools/screenshots}"
echo "==> the web pages in $(/usr/bin/chromium --version 2>/dev/null | head -n1) (screenshots: ${SCREENSHOTS_DIR#"$root"/})"
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -p no:cacheprovider -q web/tests
