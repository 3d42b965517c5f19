#!/usr/bin/env bash
# One command on a fresh Debian machine, as root: install what the tests need, then run
# ruff, mypy and the whole test suite (real SQLite, SeaweedFS, ingestbox serve subprocesses).
# Extra arguments go to pytest (for example -k storage).
set -euo pipefail
source "$(dirname "$0")/setup-env.sh"

apt_install python3 python3-venv python3-pip libmagic1 ca-certificates ffmpeg
make_venv "test"
cd "$REPO"
export PATH="$VENV/bin:$PATH"

echo "== ruff"
ruff check appliance transcode hwaccel bench tests
echo "== mypy"
mypy
echo "== pytest"
pytest -q -p no:cacheprovider "$@"
