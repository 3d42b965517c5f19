#!/usr/bin/env bash
# Run one benchmark on a Debian machine, as root: installs what it and its baseline need.
#   ./scripts/bench.sh queue        # the job engine against BullMQ 5 on a local Redis
#   ./scripts/bench.sh webhooks     # signed GitHub webhooks against a bare Sanic route
#   ./scripts/bench.sh upload       # 500 MB to SeaweedFS through ingestbox against boto3 multipart
#   ./scripts/bench.sh transcode    # the video ladder against the ffmpeg CLI
#   ./scripts/bench.sh load         # 10,000 webhooks and 20 x 50 MB uploads during a transcode: nothing lost
# Extra arguments go to the benchmark (for example --jobs 5000).
set -euo pipefail
source "$(dirname "$0")/setup-env.sh"

name="${1:?usage: scripts/bench.sh NAME [ARGS...]}"
shift
apt_install python3 python3-venv python3-pip libmagic1 ca-certificates ffmpeg
case "$name" in
  queue)
    apt_install redis-server redis-tools
    # Debian's nodejs and npm, unless a node with npm (NodeSource's, say) is already there.
    command -v npm >/dev/null || apt_install nodejs npm
    ;;
  upload)
    apt_install clamav-daemon
    ;;
esac
make_venv "test"
cd "$REPO"
if [ "$name" = queue ] && [ ! -d bench/bullmq/node_modules/bullmq ]; then
  (cd bench/bullmq && npm ci --no-audit --no-fund)
fi
exec "$VENV/bin/python" -m "bench.$name" --json "$@"
