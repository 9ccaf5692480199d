#!/usr/bin/env bash
# soak_kill.sh — kubemedicd killed with SIGKILL 100 times during heavy
# ingest, probe changes and recovery-shaped writes; after each kill every
# acknowledged write must be in the database and PRAGMA integrity_check
# must pass (issue 9). The work is bench/soak_kill.py; this builds the
# daemon and runs it with the Python that has grpcio.
#
# usage: bench/soak_kill.sh [--kills N] [--load PROBES] [--changers N]
#                           [--recovery N] [--min-life S] [--max-life S]
#                           [--commit-delay D] [--seed N] [--keep]
#        (defaults: 100 kills, 500 probes every 100 ms, 4 change clients,
#        2 recovery-shaped clients, lives of 0.3-2 s, seed 9: ~5 minutes)
# env:   BUILD (default build), PYTHON (default .cache/venv/bin/python, from
#        make tools), SOAK_TIMEOUT (seconds, default 1800: the bound)
#
# Exit status 0 when nothing acknowledged was lost and every check passed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$root/build}
PYTHON=${PYTHON:-$root/.cache/venv/bin/python}

if [ ! -x "$PYTHON" ] || ! "$PYTHON" -c 'import grpc, grpc_tools' 2>/dev/null; then
	echo "soak_kill.sh: $PYTHON has no grpcio/grpcio-tools: run make tools" >&2
	exit 2
fi
ninja -C "$BUILD" kubemedicd >/dev/null
exec timeout --signal=INT "${SOAK_TIMEOUT:-1800}" \
	"$PYTHON" "$root/bench/soak_kill.py" --kubemedicd "$BUILD/kubemedicd" "$@"
