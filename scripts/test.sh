#!/usr/bin/env bash
# One command on a fresh Debian machine, as root: install what the tests need, then run
# ruff, mypy and the whole test suite (real SQLite, SeaweedFS, ingestbox serve subprocesses).
# Extra arguments go to pytest (for example -k storage).
set -euo pipefail
source "$(dirname "$0")/setup-env.sh"

# chromium + chromium-driver: the status-page test drives Debian's headless browser (no browser download).
apt_install python3 python3-venv python3-pip libmagic1 ca-certificates ffmpeg clamav-daemon chromium chromium-driver
# Node's npm fetches the real GitHub payloads of @octokit/webhooks-examples (Debian's, unless one is there).
command -v npm >/dev/null || apt_install nodejs npm
make_venv "test"
cd "$REPO"
export PATH="$VENV/bin:$PATH"
if [ ! -d tests/npm/node_modules/@octokit/webhooks-examples ]; then
  (cd tests/npm && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== packaging/build.sh (the binary and the .deb that tests/test_packaging.py installs)"
if [ "${INGESTBOX_REUSE_BUILD:-0}" = 1 ] && [ -x dist/ingestbox ]; then
  echo "reusing dist/ (INGESTBOX_REUSE_BUILD=1)"
else
  bash packaging/build.sh
fi
# systemd-analyze and lintian check the unit and the .deb.
apt_install systemd lintian

echo "== ruff"
ruff check appliance transcode hwaccel bench tests
echo "== mypy"
mypy
echo "== pytest"
pytest -q -p no:cacheprovider "$@"
