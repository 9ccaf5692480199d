#!/usr/bin/env bash
# bench/callgrind.sh — instructions per GetHealth call, kubemedicd next to
# the C++ baseline, counted by valgrind's callgrind. Instruction counts do
# not depend on what else the machine is doing, so this is the noise-free
# companion of run.sh's QPS ratio (it ignores cache misses, syscalls'
# kernel time and waiting).
#
#   bench/callgrind.sh [--calls N] [--keep DIR] [--tls]
#
# Each server runs under callgrind with --threads 1; after 200 warm-up
# calls the counters are zeroed, N calls are made one at a time by h2load,
# and the counters are dumped: Ir/call = instructions of the whole process
# (every thread) / N. --keep DIR keeps the callgrind files for
# callgrind_annotate.
#
# --tls (issue 9): kubemedicd and the C++ server on mutual TLS with the same
# certificates (bench/lib.sh's make_pki), and kubemedicd on plaintext too;
# the calls are made by ghz (h2load has no client certificates), one
# connection and one handshake per measurement, for all three.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KM_BUILD:-$ROOT/build}
CALLS=2000
KEEP=""
TLS=0
while [ $# -gt 0 ]; do
	case "$1" in
	--calls) CALLS=$2; shift ;;
	--keep) KEEP=$2; shift ;;
	--tls) TLS=1 ;;
	*) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
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
	if [ "$TLS" = 1 ]; then
		local a=(--insecure)
		[ "${SEC:-}" = tls ] && a=(--cacert "$TMP/pki/ca.crt"
			--cert "$TMP/pki/client.crt" --key "$TMP/pki/client.key")
		"$GHZ" "${a[@]}" --proto "$ROOT/proto/kubemedic/v1/health.proto" \
			--import-paths "$ROOT/proto" \
			--call kubemedic.v1.HealthService/GetHealth \
			-d '{"target":"probe//bench"}' -c 1 --connections 1 \
			-n "$2" --format json "$1" >"$TMP/ghz.out"
		python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))['statusCodeDistribution']
sys.exit(0 if c == {'OK': int(sys.argv[2])} else 1)" "$TMP/ghz.out" "$2" ||
			{ cat "$TMP/ghz.out" >&2; exit 1; }
		return
	fi
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
printf 'auth: {localRole: operator}\n' >"$TMP/km.yaml"  # the CLI creates the probe
if [ "$TLS" = 1 ]; then
	need_ghz
	make_pki
	P=$TMP/pki
	cp "$TMP/km.db" "$TMP/km-tls.db"
	cat >"$TMP/tls.yaml" <<-EOF
	tls: {certFile: $P/server.crt, keyFile: $P/server.key, clientCAFile: $P/ca.crt, clientCertificates: require}
	auth: {localUser: "", bindings: [{role: operator, groups: [operators]}]}
	EOF
	start kmtls "$BUILD/kubemedicd" --config "$TMP/tls.yaml" --listen 127.0.0.1:0 --db "$TMP/km-tls.db" --threads 1
	"$BUILD/kubemedic" --server "$ADDR" --tls-ca "$P/ca.crt" --tls-cert "$P/client.crt" \
		--tls-key "$P/client.key" probes create bench --tcp 127.0.0.1:9 >/dev/null
	KT=$(SEC=tls measure kmtls)
fi
start kubemedicd "$BUILD/kubemedicd" --config "$TMP/km.yaml" --listen 127.0.0.1:0 --db "$TMP/km.db" --threads 1
KPID=$PID KADDR=$ADDR
"$BUILD/kubemedic" --server "$KADDR" probes create bench --tcp 127.0.0.1:9 >/dev/null
K=$(measure kubemedicd)

if [ "$TLS" = 1 ]; then
	start cxx "$BUILD/bench_cxx_health_server" --mirror "$KADDR" --target probe//bench --threads 1 \
		--tls-cert "$P/server.crt" --tls-key "$P/server.key" --tls-ca "$P/ca.crt"
	C=$(SEC=tls measure cxx)
	start cxxplain "$BUILD/bench_cxx_health_server" --mirror "$KADDR" --target probe//bench --threads 1
	CP=$(measure cxxplain)
	echo "instructions per GetHealth call ($CALLS calls by ghz, 1 at a time, whole process):"
	echo "               mutual TLS  plaintext"
	printf '  kubemedicd   %10s %10s\n' "$KT" "$K"
	printf '  C++          %10s %10s\n' "$C" "$CP"
	awk -v k="$KT" -v c="$C" -v p="$K" -v cp="$CP" 'BEGIN {printf "  C++/kubemedicd %.3f over mutual TLS, %.3f on plaintext; what TLS adds per call: kubemedicd %d, C++ %d\n", c / k, cp / p, k - p, c - cp}'
	echo "RESULT callgrind_mtls kubemedicd_ir_per_call=$KT cxx_ir_per_call=$C kubemedicd_plain_ir_per_call=$K cxx_plain_ir_per_call=$CP ratio=$(awk -v k="$KT" -v c="$C" 'BEGIN {printf "%.3f", c / k}')"
	[ -n "$KEEP" ] && mkdir -p "$KEEP" && cp "$TMP"/callgrind.* "$KEEP"/
	exit 0
fi

start cxx "$BUILD/bench_cxx_health_server" --mirror "$KADDR" --target probe//bench --threads 1
C=$(measure cxx)
[ -n "$KEEP" ] && mkdir -p "$KEEP" && cp "$TMP"/callgrind.* "$KEEP"/

echo "instructions per GetHealth call ($CALLS calls, 1 at a time, whole process):"
echo "  kubemedicd $K"
echo "  C++        $C"
awk -v k="$K" -v c="$C" 'BEGIN {printf "  C++/kubemedicd %.3f (the QPS ratio a CPU-bound server would reach)\n", c / k}'
echo "RESULT callgrind kubemedicd_ir_per_call=$K cxx_ir_per_call=$C ratio=$(awk -v k="$K" -v c="$C" 'BEGIN {printf "%.3f", c / k}')"
