#!/usr/bin/env bash
# One command on a fresh Debian machine, as root: install what ingestbox needs and run it
# on the embedded default (local storage and SQLite under ./ingestbox-data).
# Extra arguments go to `ingestbox serve` (for example --config /etc/ingestbox/ingestbox.toml).
set -euo pipefail
source "$(dirname "$0")/setup-env.sh"

apt_install python3 python3-venv python3-pip libmagic1 ca-certificates
make_venv ""
cd "$REPO"
exec "$VENV/bin/ingestbox" serve "$@"
