#!/usr/bin/env bash
# Shared by serve.sh and test.sh: Debian packages (as root) and the virtual environment in .venv.
# Usage: source scripts/setup-env.sh "<debian packages>" "<pip extras>"
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
      exit 1
    fi
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

make_venv() {
  local extras="$1"
  local python="${PYTHON:-python3}"
  if [ ! -x "$VENV/bin/python" ]; then
    "$python" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$extras"
  if [ ! -f "$stamp" ] || [ "$REPO/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    if [ -n "$extras" ]; then
      "$VENV/bin/python" -m pip install -q -e "$REPO[$extras]"
    else
      "$VENV/bin/python" -m pip install -q -e "$REPO"
    fi
    touch "$stamp"
  fi
}
