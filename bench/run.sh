#!/usr/bin/env bash
# bench/run.sh — the benchmarks of issue 2, each next to its baseline in the
# same run, with the ratios printed at the end.
#
#   bench/run.sh [--quick] [--ingest-only | --grpc-only]
#                [--results N] [--prefill M] [--reps R]
#                [--duration S] [--warmup S] [--rounds R] [--threads T]
#                [--loadgen h2load|ghz] [--server-cpu C] [--client-cpu C]
#                [--tls]
#
# 1. ingest: build/bench_ingest (bench/ingest.c): results/s through
#    km_store's writer vs a bare SQLite prepared-insert loop, same schema,
#    same pragmas, same batch size; on an empty database and on one that
#    already holds --prefill results. Goal: ratio >= 0.5.
# 2. GetHealth: kubemedicd (--threads T) and bench_cxx_health_server (the
#    C++ async baseline, T completion queues, answering the very message
#    kubemedicd answers) side by side. The server runs on CPU --server-cpu,
#    the load generator on --client-cpu (taskset). At 1 and at 64 calls in
#    flight on one HTTP/2 connection, each run --warmup s then --duration
#    s, kubemedicd and C++ interleaved, --rounds rounds, medians reported.
#    Goal: QPS ratio >= 0.8.
#    --tls (issue 9): both servers on mutual TLS with the same certificates
#    (ECDSA P-256, a test CA made in the temporary directory; the client
#    certificate required and verified, kubemedicd binding its O= to the
#    operator role), plus a third server: kubemedicd on plaintext, to show
#    what TLS and the identity check cost. Needs ghz (h2load has no client
#    certificates), so --tls implies --loadgen ghz. Goal: >= 1.0x the C++
#    server.
#
# The load generator is h2load (Debian's nghttp2-client) by default: it is
# C and does far less work per call than ghz's Go client, so on a 2-core
# box where it has one core it saturates the server, not itself. It sends a
# pre-encoded gRPC frame; latencies come from its per-request log. A run
# counts only if every response carried the expected message bytes.
# --loadgen ghz uses ghz (installed into .cache/bin from the Go module
# proxy when missing) instead.
#
# Everything it starts is stopped and every temporary file removed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KM_BUILD:-$ROOT/build}
CACHE=$ROOT/.cache

RESULTS=1000000
PREFILL=10000000
REPS=3
DURATION=10
WARMUP=2
ROUNDS=3
THREADS=1
LOADGEN=h2load
SERVER_CPU=0
CLIENT_CPU=1
DO_INGEST=1
DO_GRPC=1
TLS=0

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) RESULTS=200000 PREFILL=0 REPS=1 DURATION=3 WARMUP=1 ROUNDS=1 ;;
	--ingest-only) DO_GRPC=0 ;;
	--grpc-only) DO_INGEST=0 ;;
	--results) RESULTS=$2; shift ;;
	--prefill) PREFILL=$2; shift ;;
	--reps) REPS=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--warmup) WARMUP=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--threads) THREADS=$2; shift ;;
	--loadgen) LOADGEN=$2; shift ;;
	--server-cpu) SERVER_CPU=$2; shift ;;
	--client-cpu) CLIENT_CPU=$2; shift ;;
	--tls) TLS=1 LOADGEN=ghz ;;
	-h|--help) usage ;;
	*) echo "run.sh: unknown argument $1" >&2; usage ;;
	esac
	shift
done
case "$LOADGEN" in h2load|ghz) ;; *) echo "run.sh: --loadgen h2load|ghz" >&2; exit 2 ;; esac

. "$ROOT/bench/lib.sh"
bench_init kmbench

# ---- build --------------------------------------------------------------------
if [ ! -f "$BUILD/build.ninja" ]; then
	cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DKM_BENCH=ON >/dev/null
fi
ninja -C "$BUILD" kubemedicd kubemedic km_seed bench_ingest \
	bench_cxx_health_server >/dev/null

GHZ=""
if [ "$DO_GRPC" = 1 ]; then
	if [ "$LOADGEN" = ghz ]; then
		need_ghz
	else
		command -v h2load >/dev/null ||
			{ echo "run.sh: h2load missing: apt-get install nghttp2-client" >&2; exit 1; }
	fi
fi

say "# kubemedic benchmarks (issue 2) — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "# commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)')"

SUMMARY=()

# ---- 1. ingest ------------------------------------------------------------------
if [ "$DO_INGEST" = 1 ]; then
	say ""
	say "## ingest: $BUILD/bench_ingest --results $RESULTS --reps $REPS --prefill $PREFILL --dir $TMP"
	"$BUILD/bench_ingest" --results "$RESULTS" --reps "$REPS" \
		--prefill "$PREFILL" --dir "$TMP" | tee "$TMP/ingest.out"
	while read -r line; do
		SUMMARY+=("$line")
	done < <(grep '^RESULT' "$TMP/ingest.out" | sed 's/^RESULT //')
fi

# ---- 2. GetHealth ----------------------------------------------------------------
# Starts a server (taskset to SERVER_CPU) whose stderr goes to $1, waits (at
# most 30 s) for its "started" line and sets SERVER_ADDR to its address.
start_server() {
	local log=$1; shift
	taskset -c "$SERVER_CPU" "$@" >/dev/null 2>"$log" &
	local pid=$! i
	PIDS+=("$pid")
	SERVER_ADDR=""
	for i in $(seq 300); do
		if grep -q 'started' "$log" 2>/dev/null; then
			SERVER_ADDR=$(grep -o 'listen=[^ ]*' "$log" | head -1 | cut -d= -f2)
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "run.sh: server did not start: $*" >&2
	cat "$log" >&2
	return 1
}

# load ADDR CONCURRENCY OUTFILE -> "qps p50_us p99_us calls valid"
load_h2load() {
	local addr=$1 c=$2 out=$3
	rm -f "$out.log"
	taskset -c "$CLIENT_CPU" h2load -c 1 -m "$c" -t 1 -D "$DURATION" \
		--warm-up-time "$WARMUP" -d "$TMP/req.bin" \
		-H 'content-type: application/grpc' -H 'te: trailers' \
		--log-file="$out.log" \
		"http://$addr/kubemedic.v1.HealthService/GetHealth" >"$out" 2>&1
	python3 - "$out" "$out.log" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
qps = float(re.search(r"finished in [^,]+, ([\d.]+) req/s", text).group(1))
m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", text)
total, done, ok = map(int, m.groups())
# The log also has the warm-up's calls; rows are in end-of-response order
# (one h2load thread), so the measured calls are the last `done` rows.
rows = [l.split() for l in open(sys.argv[2]) if l.strip()][-done:]
lat = sorted(int(r[2]) for r in rows)
def pct(p):
    return lat[max(0, min(len(lat) - 1, -(-p * len(lat) // 100) - 1))]
valid = ok == done and done > 0 and all(r[1] == "200" for r in rows)
print(f"{qps:.0f} {pct(50)} {pct(99)} {done} {'yes' if valid else 'NO'}")
EOF
}

# Before timing: 1000 calls by count, whose DATA bytes must be exactly 1000
# gRPC frames of the expected message (an error reply carries no message).
check_h2load() {
	local addr=$1 out=$TMP/check.out
	h2load -n 1000 -c 1 -m 8 -t 1 -d "$TMP/req.bin" \
		-H 'content-type: application/grpc' -H 'te: trailers' \
		"http://$addr/kubemedic.v1.HealthService/GetHealth" >"$out" 2>&1
	python3 - "$out" "$RESP_BYTES" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
data = int(re.search(r"traffic: .*?, [^(]+\((\d+)\) data", text).group(1))
ok = int(re.search(r"(\d+) succeeded", text).group(1))
per = data / 1000
print(f"{per - 5:.0f}")
sys.exit(0 if ok == 1000 and data == 1000 * (int(sys.argv[2]) + 5) else 1)
EOF
}

load_ghz() {
	local addr=$1 c=$2 out=$3 args
	if [ "${4:-plain}" = tls ]; then
		args=(--cacert "$TMP/pki/ca.crt" --cert "$TMP/pki/client.crt"
		      --key "$TMP/pki/client.key")
	else
		args=(--insecure)
	fi
	args+=(--proto "$ROOT/proto/kubemedic/v1/health.proto"
	      --import-paths "$ROOT/proto"
	      --call kubemedic.v1.HealthService/GetHealth
	      -d '{"target":"probe//bench"}' -c "$c" --connections 1)
	taskset -c "$CLIENT_CPU" "$GHZ" "${args[@]}" -z "${WARMUP}s" \
		"$addr" >/dev/null 2>&1 || true
	taskset -c "$CLIENT_CPU" "$GHZ" "${args[@]}" -z "${DURATION}s" \
		--format json "$addr" >"$out" 2>/dev/null || true
	python3 - "$out" "$c" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
lat = {d["percentage"]: d["latency"] for d in r.get("latencyDistribution") or []}
codes = r.get("statusCodeDistribution") or {}
n = sum(codes.values())
# -z ends the run by cancelling the calls still in flight (at most -c):
# they end Canceled or Unavailable.
bad = {k: v for k, v in codes.items() if k != "OK"}
valid = codes.get("OK", 0) > 0 and set(bad) <= {"Canceled", "Unavailable"} and \
    sum(bad.values()) <= int(sys.argv[2])
if not valid:
    print(f"ghz status codes: {codes}", file=sys.stderr)
print(f"{r['rps']:.0f} {lat.get(50, 0) // 1000} {lat.get(99, 0) // 1000} {n} {'yes' if valid else 'NO'}")
EOF
}

if [ "$DO_GRPC" = 1 ]; then
	say ""
	if [ "$TLS" = 1 ]; then
		say "## GetHealth over mutual TLS: kubemedicd vs C++ async server (and kubemedicd on plaintext), $THREADS server thread(s) on CPU $SERVER_CPU, $LOADGEN on CPU $CLIENT_CPU, ${WARMUP}s warm-up + ${DURATION}s per run, $ROUNDS round(s)"
	else
		say "## GetHealth: kubemedicd vs C++ async server, $THREADS server thread(s) on CPU $SERVER_CPU, $LOADGEN on CPU $CLIENT_CPU, ${WARMUP}s warm-up + ${DURATION}s per run, $ROUNDS round(s)"
	fi
	# Plaintext loopback callers are operators here (the bench probe is
	# created by the CLI); the TLS server binds the client certificate's
	# O=operators instead, and has no local identity.
	printf 'auth: {localRole: operator}\n' >"$TMP/plain.yaml"
	DB=$TMP/km.db
	# The history first: kubemedicd loads current health at start.
	NOW=$(date +%s%6N)
	START=$((NOW - 100000 * 1000000))
	"$BUILD/km_seed" --db "$DB" --target probe//bench --results 100000 \
		--start-us "$START" --fail-every 10 \
		--transition "$((START + 3000000)):1:2:3 consecutive successes" \
		--transition "$((NOW - 5000000)):2:3:3 consecutive failures (HTTP 500)" >/dev/null
	SERVERS=(kubemedicd cxx)
	if [ "$TLS" = 1 ]; then
		make_pki
		cp "$DB" "$TMP/km-plain.db"
		P=$TMP/pki
		cat >"$TMP/tls.yaml" <<-EOF
		tls: {certFile: $P/server.crt, keyFile: $P/server.key, clientCAFile: $P/ca.crt, clientCertificates: require}
		auth: {localUser: "", bindings: [{role: operator, groups: [operators]}]}
		EOF
		start_server "$TMP/kubemedicd.log" "$BUILD/kubemedicd" --config "$TMP/tls.yaml" \
			--listen 127.0.0.1:0 --db "$DB" --threads "$THREADS"
		KADDR=$SERVER_ADDR
		"$BUILD/kubemedic" --server "$KADDR" --tls-ca "$P/ca.crt" --tls-cert "$P/client.crt" \
			--tls-key "$P/client.key" probes create bench --tcp 127.0.0.1:9 >/dev/null
		start_server "$TMP/kmplain.log" "$BUILD/kubemedicd" --config "$TMP/plain.yaml" \
			--listen 127.0.0.1:0 --db "$TMP/km-plain.db" --threads "$THREADS"
		PADDR=$SERVER_ADDR
		"$BUILD/kubemedic" --server "$PADDR" probes create bench --tcp 127.0.0.1:9 >/dev/null
		start_server "$TMP/cxx.log" "$BUILD/bench_cxx_health_server" \
			--mirror "$PADDR" --target probe//bench --threads "$THREADS" \
			--tls-cert "$P/server.crt" --tls-key "$P/server.key" --tls-ca "$P/ca.crt"
		CADDR=$SERVER_ADDR
		SERVERS+=(kmplain)
	else
		start_server "$TMP/kubemedicd.log" "$BUILD/kubemedicd" --config "$TMP/plain.yaml" \
			--listen 127.0.0.1:0 --db "$DB" --threads "$THREADS"
		KADDR=$SERVER_ADDR
		"$BUILD/kubemedic" --server "$KADDR" probes create bench --tcp 127.0.0.1:9 >/dev/null
		start_server "$TMP/cxx.log" "$BUILD/bench_cxx_health_server" \
			--mirror "$KADDR" --target probe//bench --threads "$THREADS"
		CADDR=$SERVER_ADDR
	fi
	RESP_BYTES=$(grep -o 'size=[0-9]*' "$TMP/cxx.log" | cut -d= -f2)
	python3 -c "
import sys, struct
m = b'\x0a' + bytes([len('probe//bench')]) + b'probe//bench'
sys.stdout.buffer.write(b'\x00' + struct.pack('>I', len(m)) + m)" >"$TMP/req.bin"
	say "kubemedicd at $KADDR, C++ server at $CADDR"
	if [ "$LOADGEN" = h2load ]; then
		KB=$(check_h2load "$KADDR") || { echo "run.sh: kubemedicd's answer is not $RESP_BYTES bytes" >&2; exit 1; }
		CB=$(check_h2load "$CADDR") || { echo "run.sh: the C++ answer is not $RESP_BYTES bytes" >&2; exit 1; }
		say "TargetHealth packed size on the wire (1000 calls each): kubemedicd $KB bytes, C++ $CB bytes (C++ template: $RESP_BYTES bytes)"
	else
		say "TargetHealth packed size: C++ template $RESP_BYTES bytes (the message kubemedicd answered, re-serialized)"
	fi

	declare -A QPS P50 P99 LAST RATIO PRATIO
	say ""
	printf '%-6s %-5s %-11s %10s %9s %9s %9s %6s\n' round conc server qps p50_us p99_us calls valid
	for r in $(seq "$ROUNDS"); do
		for c in 1 64; do
			for s in "${SERVERS[@]}"; do
				addr=$KADDR sec=$([ "$TLS" = 1 ] && echo tls || echo plain)
				[ "$s" = cxx ] && addr=$CADDR
				[ "$s" = kmplain ] && addr=$PADDR sec=plain
				read -r q p50 p99 n ok < <("load_$LOADGEN" "$addr" "$c" "$TMP/$s.$c.$r.out" "$sec")
				printf '%-6s %-5s %-11s %10s %9s %9s %9s %6s\n' "$r" "$c" "$s" "$q" "$p50" "$p99" "$n" "$ok"
				[ "$ok" = yes ] || { echo "run.sh: invalid run" >&2; exit 1; }
				QPS[$s.$c]+="$q "
				P50[$s.$c]+="$p50 "
				P99[$s.$c]+="$p99 "
				LAST[$s]=$q
			done
			RATIO[$c]+="$(awk -v a="${LAST[kubemedicd]}" -v b="${LAST[cxx]}" 'BEGIN {printf "%.3f", a / b}') "
			[ "$TLS" = 1 ] && PRATIO[$c]+="$(awk -v a="${LAST[kubemedicd]}" -v b="${LAST[kmplain]}" 'BEGIN {printf "%.3f", a / b}') "
		done
	done
	med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
	say ""
	say "medians:"
	for c in 1 64; do
		kq=$(echo "${QPS[kubemedicd.$c]}" | med); cq=$(echo "${QPS[cxx.$c]}" | med)
		kp50=$(echo "${P50[kubemedicd.$c]}" | med); cp50=$(echo "${P50[cxx.$c]}" | med)
		kp99=$(echo "${P99[kubemedicd.$c]}" | med); cp99=$(echo "${P99[cxx.$c]}" | med)
		ratio=$(awk -v a="$kq" -v b="$cq" 'BEGIN {printf "%.3f", a / b}')
		rratio=$(echo "${RATIO[$c]}" | med)
		say "  concurrency $c: kubemedicd $kq qps (p50 ${kp50} us, p99 ${kp99} us); C++ $cq qps (p50 ${cp50} us, p99 ${cp99} us); ratio of medians $ratio, median of per-round ratios $rratio [${RATIO[$c]% }] (goal >= 0.8)"
		if [ "$TLS" = 1 ]; then
			pq=$(echo "${QPS[kmplain.$c]}" | med)
			prr=$(echo "${PRATIO[$c]}" | med)
			say "    kubemedicd on plaintext: $pq qps (p50 $(echo "${P50[kmplain.$c]}" | med) us, p99 $(echo "${P99[kmplain.$c]}" | med) us); mutual TLS / plaintext: median of per-round ratios $prr [${PRATIO[$c]% }]"
			SUMMARY+=("gethealth_mtls concurrency=$c kubemedicd_qps=$kq cxx_qps=$cq ratio=$ratio round_ratio_median=$rratio kubemedicd_plain_qps=$pq tls_over_plain=$prr kubemedicd_p50_us=$kp50 kubemedicd_p99_us=$kp99 cxx_p50_us=$cp50 cxx_p99_us=$cp99 loadgen=$LOADGEN threads=$THREADS")
		else
			SUMMARY+=("gethealth concurrency=$c kubemedicd_qps=$kq cxx_qps=$cq ratio=$ratio round_ratio_median=$rratio kubemedicd_p50_us=$kp50 kubemedicd_p99_us=$kp99 cxx_p50_us=$cp50 cxx_p99_us=$cp99 loadgen=$LOADGEN threads=$THREADS")
		fi
	done
fi

say ""
say "## summary (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
for l in "${SUMMARY[@]}"; do say "  $l"; done
