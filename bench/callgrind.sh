#!/usr/bin/env bash
# bench/callgrind.sh — instructions per GetHealth call, kubemedicd next to
# the C++ baseline, counted by valgrind's callgrind. Instruction counts do
# not depend on what else the machine is doing, so this is the noise-free
# companion of run.sh's QPS ratio (it ignores cache misses, syscalls'
# kernel time and waiting).
#
#   bench/callgrind.sh [--calls N] [--keep DIR]
#
# Each server runs under callgrind with --threads 1; after 200 warm-up
# calls the counters are zeroed, N calls are made one at a time by h2load,
# and the counters are dumped: Ir/call = instructions of the whole process
# (every thread) / N. --keep DIR keeps the callgrind files for
# callgrind_annotate.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KM_BUILD:-$ROOT/build}
CALLS=2000
KEEP=""
while [ $# -gt 0 ]; do
	case "$1" in
	--calls) CALLS=$2; shift ;;
	--keep) KEEP=$2; shift ;;
	*) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
	shift
done

. "$ROOT/bench/lib.sh"
bench_init kmcallgrind

ninja -C "$BUILD" kubemedicd kubemedic km_seed bench_cxx_health_server >/dev/null

# start NAME CMD... : runs CMD under callgrind, sets ADDR and PID.
start() {
	local name=$1; shift
	valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.$name" \
		"$@" >/dev/null 2>"$TMP/$name.log" &
	PID=$!
	PIDS+=("$PID")
	ADDR=""
	for _ in $(seq 600); do
		if grep -q 'started' "$TMP/$name.log"; then
			ADDR=$(grep -o 'listen=[^ ]*' "$TMP/$name.log" | cut -d= -f2)
			return 0
		fi
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$TMP/$name.log" >&2
	exit 1
}

calls() {
	h2load -n "$2" -c 1 -m 1 -t 1 -d "$TMP/req.bin" \
		-H 'content-type: application/grpc' -H 'te: trailers' \
		"http://$1/kubemedic.v1.HealthService/GetHealth" >"$TMP/h2load.out"
	grep -q "$2 succeeded" "$TMP/h2load.out" ||
		{ cat "$TMP/h2load.out" >&2; exit 1; }
}

# measure NAME: zero, N calls, dump; prints Ir per call.
measure() {
	calls "$ADDR" 200
	callgrind_control -z "$PID" >/dev/null
	calls "$ADDR" "$CALLS"
	callgrind_control -d "$PID" >/dev/null
	local f
	for _ in $(seq 100); do
		f=$(ls "$TMP/callgrind.$1".* 2>/dev/null | head -1 || true)
		[ -n "$f" ] && grep -q '^totals:' "$f" && break
		sleep 0.1
	done
	awk -v n="$CALLS" '/^totals:/ {printf "%.0f\n", $2 / n}' "$f"
}

python3 -c "
import sys, struct
m = b'\x0a' + bytes([len('probe//bench')]) + b'probe//bench'
sys.stdout.buffer.write(b'\x00' + struct.pack('>I', len(m)) + m)" >"$TMP/req.bin"

# The history first: kubemedicd loads current health at start.
NOW=$(date +%s%6N)
START=$((NOW - 100000 * 1000000))
"$BUILD/km_seed" --db "$TMP/km.db" --target probe//bench --results 100000 \
	--start-us "$START" --fail-every 10 \
	--transition "$((START + 3000000)):1:2:3 consecutive successes" \
	--transition "$((NOW - 5000000)):2:3:3 consecutive failures (HTTP 500)" >/dev/null
start kubemedicd "$BUILD/kubemedicd" --listen 127.0.0.1:0 --db "$TMP/km.db" --threads 1
KPID=$PID KADDR=$ADDR
"$BUILD/kubemedic" --server "$KADDR" probes create bench --tcp 127.0.0.1:9 >/dev/null
K=$(measure kubemedicd)

start cxx "$BUILD/bench_cxx_health_server" --mirror "$KADDR" --target probe//bench --threads 1
C=$(measure cxx)
[ -n "$KEEP" ] && mkdir -p "$KEEP" && cp "$TMP"/callgrind.* "$KEEP"/

echo "instructions per GetHealth call ($CALLS calls, 1 at a time, whole process):"
echo "  kubemedicd $K"
echo "  C++        $C"
awk -v k="$K" -v c="$C" 'BEGIN {printf "  C++/kubemedicd %.3f (the QPS ratio a CPU-bound server would reach)\n", c / k}'
echo "RESULT callgrind kubemedicd_ir_per_call=$K cxx_ir_per_call=$C ratio=$(awk -v k="$K" -v c="$C" 'BEGIN {printf "%.3f", c / k}')"
