#!/usr/bin/env bash
# bench/probe_scale.sh — issue 3: the probe engine at 10,000 HTTP targets,
# next to ab (Debian's apache2-utils) against the same nginx in the same run.
#
#   bench/probe_scale.sh [--quick] [--scale-only | --max-only]
#                        [--probes N] [--duration S] [--warmup S]
#                        [--rounds R] [--ports P] [--ab-concurrency C]
#                        [--curl-paced S]
#                        [--max-period-ms MS] [--max-start RATE]
#                        [--max-step RATE] [--max-resolution RATE]
#                        [--max-limit RATE] [--max-duration S]
#                        [--max-warmup S] [--km-cpu C] [--nginx-cpu C]
#
# One private nginx (worker_processes 1, pinned to --nginx-cpu) answers
# `return 200 "ok"` on 1 + P loopback ports, with access_log off. Clients
# run pinned to --km-cpu, one at a time; nginx's CPU is counted for none.
# The clients:
#  - kubemedicd --threads 1, its probes from its config file;
#  - ab -c C, no keep-alive (the baseline of the goals);
#  - build/bench_curl_multi (bench/curl_multi.c): bare libcurl driven the
#    way km_check_http.c drives it, nothing stored; it splits the distance
#    between ab and kubemedicd into libcurl's share and kubemedic's own.
#
# 1. scale (per round): kubemedicd with N HTTP probes (period 1 s, timeout
#    1 s, spread over ports 1..P); after --warmup s a window of --duration
#    s, opened and closed with SIGUSR1 (a "prober stats" line) while
#    /proc/PID/stat is read. Reported: CPU µs per probe run (utime+stime /
#    runs in the window), peak RSS (VmHWM), p99 schedule lag (in the window),
#    results stored per second, TIME_WAIT sockets on the probe ports
#    (sampled every second), results dropped and failed checks. Then, on
#    port 0: `ab -n <runs in the window> -c C` and bench_curl_multi with
#    the same requests and concurrency (µs of CPU per request from
#    /usr/bin/time), and bench_curl_multi at kubemedicd's measured rate for
#    --curl-paced s. Ratios: kubemedicd/ab (goal <= 1.3), curl/ab,
#    kubemedicd/paced curl. Goals: VmHWM < 150 MB, p99 lag < 20 ms, no
#    result dropped.
# 2. max rate: ab -c 100 for --max-duration s (requests/s), then as many
#    requests through bench_curl_multi -c 100, before and after; kubemedicd
#    with rate*period/1000 probes of period --max-period-ms, stepped up by
#    --max-step from --max-start, then bisected to --max-resolution. A
#    rate is sustained when, over a window of --max-duration s after
#    --max-warmup s, no slot was skipped (late or overlapping), no check
#    failed, no result was dropped, and runs/s reached 99% of the rate.
#    Ratio: highest sustained rate / ab's requests/s (goal >= 0.8).
#
# Environment: KM_BUILD (default build/), KUBEMEDICD (default
# $KM_BUILD/kubemedicd).
#
# Nothing here asserts a time; the numbers go to bench/RESULTS.md. Every
# process it starts is stopped and the temporary directory removed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KM_BUILD:-$ROOT/build}
# Another kubemedicd to measure (an older build, for before/after); it must
# have the "prober stats" line on SIGUSR1.
KUBEMEDICD=${KUBEMEDICD:-$BUILD/kubemedicd}

PROBES=10000
DURATION=60
WARMUP=10
ROUNDS=3
PORTS=4
AB_C=10
MAX_PERIOD_MS=100
MAX_START=4000
MAX_STEP=2000
MAX_RES=500
MAX_LIMIT=60000
MAX_DURATION=10
MAX_WARMUP=5
CURL_PACED_S=5
KM_CPU=0
NGINX_CPU=1
DO_SCALE=1
DO_MAX=1

usage() { sed -n '2,50p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) PROBES=2000 DURATION=10 WARMUP=5 ROUNDS=1 CURL_PACED_S=5 MAX_DURATION=5 MAX_WARMUP=3 MAX_RES=2000 ;;
	--scale-only) DO_MAX=0 ;;
	--max-only) DO_SCALE=0 ;;
	--probes) PROBES=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--warmup) WARMUP=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--ports) PORTS=$2; shift ;;
	--ab-concurrency) AB_C=$2; shift ;;
	--curl-paced) CURL_PACED_S=$2; shift ;;
	--max-period-ms) MAX_PERIOD_MS=$2; shift ;;
	--max-start) MAX_START=$2; shift ;;
	--max-step) MAX_STEP=$2; shift ;;
	--max-resolution) MAX_RES=$2; shift ;;
	--max-limit) MAX_LIMIT=$2; shift ;;
	--max-duration) MAX_DURATION=$2; shift ;;
	--max-warmup) MAX_WARMUP=$2; shift ;;
	--km-cpu) KM_CPU=$2; shift ;;
	--nginx-cpu) NGINX_CPU=$2; shift ;;
	-h|--help) usage ;;
	*) echo "probe_scale.sh: unknown argument $1" >&2; usage ;;
	esac
	shift
done

for tool in nginx ab taskset ss sqlite3 python3 curl; do
	command -v "$tool" >/dev/null || {
		echo "probe_scale.sh: $tool missing (apt-get install nginx-light apache2-utils util-linux iproute2 sqlite3 python3)" >&2
		exit 1
	}
done
[ -x /usr/bin/time ] || { echo "probe_scale.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

. "$ROOT/bench/lib.sh"
bench_init kmscale
# Removes a pid from PIDS once it has been waited for.
forget() {
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}
now() { date +%s.%N; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz() { getconf CLK_TCK; }
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# ---- build ----------------------------------------------------------------------
if [ ! -f "$BUILD/build.ninja" ]; then
	cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
ninja -C "$BUILD" kubemedicd bench_curl_multi >/dev/null

# ---- nginx ------------------------------------------------------------------------
# Ports: the first for ab, the others for the probes.
read -r -a PORT_LIST < <(python3 - "$((PORTS + 1))" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
AB_PORT=${PORT_LIST[0]}
PROBE_PORTS=("${PORT_LIST[@]:1}")
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=65536
mkdir -p "$TMP/nginx"
{
	echo "worker_processes 1;"
	echo "daemon off;"
	echo "pid $TMP/nginx/nginx.pid;"
	echo "error_log $TMP/nginx/error.log warn;"
	echo "worker_rlimit_nofile $NOFILE;"
	echo "events { worker_connections $((NOFILE - 100)); use epoll; multi_accept on; accept_mutex off; }"
	echo "http {"
	echo "  access_log off;"
	echo "  keepalive_timeout 0;"
	echo "  client_body_temp_path $TMP/nginx/body;"
	echo "  proxy_temp_path $TMP/nginx/proxy;"
	echo "  fastcgi_temp_path $TMP/nginx/fastcgi;"
	echo "  uwsgi_temp_path $TMP/nginx/uwsgi;"
	echo "  scgi_temp_path $TMP/nginx/scgi;"
	echo "  server {"
	for p in "${PORT_LIST[@]}"; do echo "    listen 127.0.0.1:$p backlog=4096;"; done
	echo "    location / { return 200 \"ok\"; }"
	echo "  }"
	echo "}"
} >"$TMP/nginx/nginx.conf"
taskset -c "$NGINX_CPU" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>>"$TMP/nginx/error.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for _ in $(seq 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AB_PORT/" 2>/dev/null)" = 200 ] && break
	kill -0 "$NGINX_PID" 2>/dev/null || { cat "$TMP/nginx/error.log" >&2; exit 1; }
	sleep 0.1
done
for p in "${PORT_LIST[@]}"; do
	[ "$(curl -s "http://127.0.0.1:$p/")" = ok ] || { echo "probe_scale.sh: nginx does not answer on $p" >&2; exit 1; }
done

say "# kubemedic probe engine at scale (issue 3) — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "# commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)'), kubemedicd: $KUBEMEDICD"
say "# $(nginx -v 2>&1), $(ab -V | head -1), $(curl --version | head -1 | cut -d' ' -f1-2) (libcurl), kubemedicd and ab on CPU $KM_CPU, nginx on CPU $NGINX_CPU"
say "# nginx ports: ab $AB_PORT, probes ${PROBE_PORTS[*]}"

# ---- helpers --------------------------------------------------------------------------
# probes_yaml N PERIOD_MS FILE DB: a config file with N HTTP probes.
probes_yaml() {
	python3 - "$1" "$2" "$3" "$4" "${PROBE_PORTS[@]}" <<'EOF'
import sys
n, period, path, db = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ports = sys.argv[5:]
with open(path, "w") as f:
    f.write(f"database: {{path: {db}}}\nprobes:\n")
    for i in range(n):
        f.write(f"  - {{name: p{i:06d}, httpGet: {{host: 127.0.0.1, "
                f"port: {ports[i % len(ports)]}, path: /}}, "
                f"periodMilliseconds: {period}, timeoutSeconds: 1}}\n")
EOF
}

# start_km CONFIG LOG: starts kubemedicd on KM_CPU, sets KM_PID.
start_km() {
	local cfg=$1 log=$2
	taskset -c "$KM_CPU" "$KUBEMEDICD" --config "$cfg" \
		--listen 127.0.0.1:0 --threads 1 >/dev/null 2>"$log" &
	KM_PID=$!
	PIDS+=("$KM_PID")
	for _ in $(seq 1200); do
		grep -q 'kubemedicd started' "$log" 2>/dev/null && return 0
		kill -0 "$KM_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "probe_scale.sh: kubemedicd did not start" >&2
	cat "$log" >&2
	return 1
}

stop_km() {
	local rc=0
	kill -TERM "$KM_PID"
	wait "$KM_PID" || rc=$?
	forget "$KM_PID"
	[ "$rc" = 0 ] || { echo "probe_scale.sh: kubemedicd exited with $rc" >&2; return 1; }
}

# stats_now LOG: SIGUSR1, then waits for the new "prober stats" line and
# prints it.
stats_now() {
	local log=$1 n
	n=$(grep -c 'prober stats' "$log" || true)
	kill -USR1 "$KM_PID"
	for _ in $(seq 200); do
		if [ "$(grep -c 'prober stats' "$log" || true)" -gt "$n" ]; then
			grep 'prober stats' "$log" | tail -1
			return 0
		fi
		sleep 0.05
	done
	echo "probe_scale.sh: no stats line after SIGUSR1" >&2
	return 1
}

# field LINE NAME
field() { grep -o " $2=[0-9-]*" <<<"$1" | cut -d= -f2; }

# tw_count PORT...: TIME_WAIT sockets on the client's side (the remote
# port is one of these) and on nginx's side (the local port is), as
# "client server".
tw_count() {
	local c="" s="" p
	for p in "$@"; do
		c+="${c:+ or }dport = :$p"
		s+="${s:+ or }sport = :$p"
	done
	echo "$(ss -Htan state time-wait "( $c )" | wc -l)" \
		"$(ss -Htan state time-wait "( $s )" | wc -l)"
}

# tw_sampler OUT PORT...: a sample every second until killed, on nginx's
# CPU: with tens of thousands of sockets in TIME_WAIT one ss takes tens of
# ms, which on the clients' CPU would show up in their schedule lag.
tw_sampler() {
	local out=$1; shift
	while :; do tw_count "$@" >>"$out"; sleep 1; done
}

# tw_max FILE: "client/server", the highest of each column.
tw_max() {
	awk '$1 > c { c = $1 } $2 > s { s = $2 } END { print c + 0 "/" s + 0 }' "$1"
}

# run_ab OUT ARGS...: ab pinned to KM_CPU; prints "requests cpu_s wall_s rps failed".
run_ab() {
	local out=$1; shift
	taskset -c "$KM_CPU" /usr/bin/time -f '%U %S %e' -o "$out.time" \
		ab -q -r "$@" "http://127.0.0.1:$AB_PORT/" >"$out" 2>&1 || true
	python3 - "$out" "$out.time" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
u, s, e = open(sys.argv[2]).read().split()[-3:]
def num(rx):
    m = re.search(rx, text)
    return m.group(1) if m else "0"
done = int(num(r"Complete requests:\s+(\d+)"))
failed = int(num(r"Failed requests:\s+(\d+)")) + int(num(r"Non-2xx responses:\s+(\d+)"))
rps = float(num(r"Requests per second:\s+([\d.]+)"))
print(done, f"{float(u) + float(s):.2f}", e, f"{rps:.0f}", failed)
EOF
}

# run_curl OUT ARGS...: bench_curl_multi pinned to KM_CPU; prints
# "requests cpu_s wall_s failed".
run_curl() {
	local out=$1; shift
	taskset -c "$KM_CPU" /usr/bin/time -f '%U %S %e' -o "$out.time" \
		"$BUILD/bench_curl_multi" --url "http://127.0.0.1:$AB_PORT/" "$@" >"$out" 2>&1 || true
	python3 - "$out" "$out.time" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
u, s, e = open(sys.argv[2]).read().split()[-3:]
m = re.search(r"requests=(\d+) failed=(\d+)", text)
n, failed = (int(m.group(1)), int(m.group(2))) if m else (0, -1)
print(n, f"{float(u) + float(s):.2f}", e, failed)
EOF
}

# The host's count of SYNs dropped because a listen queue was full (nstat,
# iproute2): a probe whose SYN is dropped times out, and it is nginx's
# queue, not kubemedicd, that overflowed.
listen_overflows() {
	nstat -az TcpExtListenOverflows 2>/dev/null | awk '/ListenOverflows/ {print $2; f = 1} END {if (!f) print 0}'
}

SUMMARY=()

# ---- 1. scale -------------------------------------------------------------------------
if [ "$DO_SCALE" = 1 ]; then
	say ""
	say "## 1. $PROBES HTTP probes, period 1 s, timeout 1 s: ${WARMUP} s warm-up, ${DURATION} s window; then ab -c $AB_C and bench_curl_multi -c $AB_C with the same number of requests, and bench_curl_multi at kubemedicd's rate for ${CURL_PACED_S} s; $ROUNDS round(s)"
	printf '%-5s %8s %7s %7s %7s %7s %8s %6s %7s %8s %7s %8s %8s %8s %7s %7s %7s\n' \
		round runs runs/s km_us ab_us curl_us curlp_us km/ab curl/ab km/curlp hwm_MB lag_p99 lag_max stored/s dropped failed skipped
	declare -a R_RATIO=() R_KMUS=() R_ABUS=() R_CURLUS=() R_CURLPUS=() R_CA=() R_KC=() R_HWM=() R_P99=() R_STORED=() R_TW=() R_TWAB=() R_RUNS=()
	for r in $(seq "$ROUNDS"); do
		DB=$TMP/scale$r.db
		probes_yaml "$PROBES" 1000 "$TMP/scale.yaml" "$DB"
		LOG=$TMP/km.scale$r.log
		start_km "$TMP/scale.yaml" "$LOG"
		sleep "$WARMUP"
		c0=$(ticks "$KM_PID"); t0=$(now); s0=$(stats_now "$LOG"); lo0=$(listen_overflows)
		: >"$TMP/tw.km$r"
		taskset -c "$NGINX_CPU" bash -c "$(declare -f tw_count tw_sampler); tw_sampler $TMP/tw.km$r ${PROBE_PORTS[*]}" &
		TWP=$!; PIDS+=("$TWP")
		sleep "$DURATION"
		c1=$(ticks "$KM_PID"); t1=$(now); s1=$(stats_now "$LOG"); lo1=$(listen_overflows)
		kill "$TWP"; wait "$TWP" 2>/dev/null || true; forget "$TWP"
		hwm=$(awk '/VmHWM/ {print $2}' "/proc/$KM_PID/status")
		stop_km
		# Results are runs since schema 6; an older kubemedicd (KUBEMEDICD) has
		# one results row each.
		rows=$(sqlite3 "file:$DB?mode=ro" 'SELECT coalesce(sum(count), 0) FROM runs' 2>/dev/null ||
			sqlite3 "file:$DB?mode=ro" 'SELECT count(*) FROM results')
		runs=$(( $(field "$s1" runs) - $(field "$s0" runs) ))
		written=$(( $(field "$s1" results_written) - $(field "$s0" results_written) ))
		failed=$(( $(field "$s1" failed) - $(field "$s0" failed) ))
		skipped=$(( $(field "$s1" skipped_late) + $(field "$s1" skipped_overlap) - $(field "$s0" skipped_late) - $(field "$s0" skipped_overlap) ))
		dropped=$(field "$s1" results_dropped)
		results_total=$(( $(field "$s1" ok) + $(field "$s1" failed) ))
		# Every result counted by the last stats line must be in the database.
		[ "$rows" -ge "$results_total" ] || dropped="$dropped(rows<$results_total)"
		read -r kms kmus rps sps hwm_mb < <(awk -v c="$((c1 - c0))" -v hz="$(hz)" -v n="$runs" \
			-v w="$written" -v t0="$t0" -v t1="$t1" -v h="$hwm" \
			'BEGIN {s = c / hz; printf "%.2f %.1f %.0f %.0f %.1f\n", s, 1e6 * s / n, n / (t1 - t0), w / (t1 - t0), h / 1024}')
		twk=$(tw_max "$TMP/tw.km$r")
		# ab: the same number of requests.
		: >"$TMP/tw.ab$r"
		taskset -c "$NGINX_CPU" bash -c "$(declare -f tw_count tw_sampler); tw_sampler $TMP/tw.ab$r $AB_PORT" &
		TWP=$!; PIDS+=("$TWP")
		read -r abn abs abe abrps abfail < <(run_ab "$TMP/ab.scale$r" -n "$runs" -c "$AB_C")
		kill "$TWP"; wait "$TWP" 2>/dev/null || true; forget "$TWP"
		tw_count "$AB_PORT" >>"$TMP/tw.ab$r"
		twa=$(tw_max "$TMP/tw.ab$r")
		[ "$abn" = "$runs" ] && [ "$abfail" = 0 ] || { echo "probe_scale.sh: ab completed $abn of $runs, $abfail failed" >&2; cat "$TMP/ab.scale$r" >&2; exit 1; }
		# libcurl alone, as kubemedic drives it: like ab, then at kubemedicd's pace.
		read -r cn cs ce cfail < <(run_curl "$TMP/curl.scale$r" --requests "$runs" --concurrency "$AB_C")
		pn=$(awk -v r="$rps" -v s="$CURL_PACED_S" 'BEGIN {printf "%d", r * s}')
		read -r pn ps pe pfail < <(run_curl "$TMP/curlp.scale$r" --requests "$pn" --rate "$rps")
		abus=$(awk -v s="$abs" -v n="$abn" 'BEGIN {printf "%.1f", 1e6 * s / n}')
		curlus=$(awk -v s="$cs" -v n="$cn" 'BEGIN {printf "%.1f", n ? 1e6 * s / n : 0}')
		curlpus=$(awk -v s="$ps" -v n="$pn" 'BEGIN {printf "%.1f", n ? 1e6 * s / n : 0}')
		ratio=$(awk -v a="$kmus" -v b="$abus" 'BEGIN {printf "%.3f", a / b}')
		ca=$(awk -v a="$curlus" -v b="$abus" 'BEGIN {printf "%.3f", a / b}')
		kc=$(awk -v a="$kmus" -v b="$curlpus" 'BEGIN {printf "%.3f", b ? a / b : 0}')
		printf '%-5s %8s %7s %7s %7s %7s %8s %6s %7s %8s %7s %8s %8s %8s %7s %7s %7s\n' \
			"$r" "$runs" "$rps" "$kmus" "$abus" "$curlus" "$curlpus" "$ratio" "$ca" "$kc" "$hwm_mb" \
			"$(field "$s1" interval_lag_p99_us)" "$(field "$s1" interval_lag_max_us)" "$sps" "$dropped" "$failed" "$skipped"
		say "      kubemedicd: $kms s CPU, lag p50 $(field "$s1" interval_lag_p50_us) µs, TIME_WAIT max (client/nginx) $twk, $rows results in the database after the stop, SYNs dropped by full listen queues $((lo1 - lo0))"
		say "      ab: $abn requests, $abs s CPU, $abe s wall ($abrps/s), TIME_WAIT max (client/nginx) $twa; curl -c $AB_C: $cn requests, $cs s CPU, $ce s wall, $cfail failed; curl paced at $rps/s: $pn requests, $ps s CPU, $pfail failed; load average $(cut -d' ' -f1-3 /proc/loadavg)"
		R_RATIO+=("$ratio"); R_KMUS+=("$kmus"); R_ABUS+=("$abus"); R_CURLUS+=("$curlus"); R_CURLPUS+=("$curlpus")
		R_CA+=("$ca"); R_KC+=("$kc"); R_HWM+=("$hwm_mb")
		R_P99+=("$(field "$s1" interval_lag_p99_us)"); R_STORED+=("$sps"); R_TW+=("${twk%/*}"); R_TWAB+=("${twa%/*}"); R_RUNS+=("$rps")
		rm -f "$DB" "$DB-wal" "$DB-shm"
	done
	say ""
	m_ratio=$(echo "${R_RATIO[*]}" | med)
	say "medians over $ROUNDS round(s):"
	say "  CPU per request: kubemedicd $(echo "${R_KMUS[*]}" | med) µs, ab $(echo "${R_ABUS[*]}" | med) µs, curl -c $AB_C $(echo "${R_CURLUS[*]}" | med) µs, curl paced $(echo "${R_CURLPUS[*]}" | med) µs"
	say "  kubemedicd/ab $m_ratio [${R_RATIO[*]}] (goal <= 1.3); curl/ab $(echo "${R_CA[*]}" | med) [${R_CA[*]}]; kubemedicd/curl paced $(echo "${R_KC[*]}" | med) [${R_KC[*]}]"
	say "  VmHWM $(echo "${R_HWM[*]}" | med) MB (goal < 150); p99 lag $(echo "${R_P99[*]}" | med) µs (goal < 20000); runs/s $(echo "${R_RUNS[*]}" | med) (scheduled: $PROBES); stored/s $(echo "${R_STORED[*]}" | med); TIME_WAIT max on the client side: kubemedicd $(echo "${R_TW[*]}" | med), ab $(echo "${R_TWAB[*]}" | med)"
	SUMMARY+=("scale probes=$PROBES km_ab_ratio=$m_ratio curl_ab_ratio=$(echo "${R_CA[*]}" | med) km_curl_paced_ratio=$(echo "${R_KC[*]}" | med) km_us=$(echo "${R_KMUS[*]}" | med) ab_us=$(echo "${R_ABUS[*]}" | med) runs_per_s=$(echo "${R_RUNS[*]}" | med) hwm_mb=$(echo "${R_HWM[*]}" | med) lag_p99_us=$(echo "${R_P99[*]}" | med) stored_per_s=$(echo "${R_STORED[*]}" | med)")
fi

# ---- 2. max rate ------------------------------------------------------------------------
# try_rate RATE: prints one row and returns 0 if the rate was sustained.
try_rate() {
	local rate=$1 n log s0 s1 c0 c1 t0 t1 runs late overlap failed dropped rps cpu ok
	n=$(( rate * MAX_PERIOD_MS / 1000 ))
	log=$TMP/km.max$rate.log
	probes_yaml "$n" "$MAX_PERIOD_MS" "$TMP/max.yaml" "$TMP/max.db"
	start_km "$TMP/max.yaml" "$log"
	sleep "$MAX_WARMUP"
	c0=$(ticks "$KM_PID"); t0=$(now); s0=$(stats_now "$log")
	sleep "$MAX_DURATION"
	c1=$(ticks "$KM_PID"); t1=$(now); s1=$(stats_now "$log")
	stop_km
	rm -f "$TMP/max.db" "$TMP/max.db-wal" "$TMP/max.db-shm"
	runs=$(( $(field "$s1" runs) - $(field "$s0" runs) ))
	late=$(( $(field "$s1" skipped_late) - $(field "$s0" skipped_late) ))
	overlap=$(( $(field "$s1" skipped_overlap) - $(field "$s0" skipped_overlap) ))
	failed=$(( $(field "$s1" failed) - $(field "$s0" failed) ))
	dropped=$(( $(field "$s1" results_dropped) - $(field "$s0" results_dropped) ))
	read -r rps cpu < <(awk -v n="$runs" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v hz="$(hz)" \
		'BEGIN {printf "%.0f %.0f\n", n / (t1 - t0), 100 * c / hz / (t1 - t0)}')
	ok=no
	if [ "$late" = 0 ] && [ "$overlap" = 0 ] && [ "$failed" = 0 ] && [ "$dropped" = 0 ] &&
		awk -v a="$rps" -v b="$rate" 'BEGIN {exit !(a >= 0.99 * b)}'; then
		ok=yes
	fi
	printf '%8s %7s %8s %6s %8s %8s %7s %8s %9s %9s %9s %5s\n' "$rate" "$n" "$rps" "$cpu" "$late" "$overlap" "$failed" "$dropped" \
		"$(field "$s1" interval_lag_p99_us)" "$(field "$s1" interval_lag_max_us)" "$(field "$s1" in_flight)" "$ok"
	[ "$ok" = yes ]
}

if [ "$DO_MAX" = 1 ]; then
	say ""
	say "## 2. highest sustained probe rate (period ${MAX_PERIOD_MS} ms, timeout 1 s; ${MAX_WARMUP} s warm-up, ${MAX_DURATION} s window) vs ab -c 100 (and bench_curl_multi -c 100)"
	AB_RPS=() CURL_RPS=()
	# baselines WHEN: ab -c 100 for MAX_DURATION s, then as many requests
	# through bench_curl_multi -c 100.
	baselines() {
		local abn abs abe abrps abfail cn cs ce cfail crps
		read -r abn abs abe abrps abfail < <(run_ab "$TMP/ab.max$1" -t "$MAX_DURATION" -n 2000000 -c 100)
		read -r cn cs ce cfail < <(run_curl "$TMP/curl.max$1" --requests "$abn" --concurrency 100)
		crps=$(awk -v n="$cn" -v e="$ce" 'BEGIN {printf "%.0f", n / e}')
		say "ab -c 100 ($1): $abn requests in $abe s, $abrps/s, CPU $abs s ($(awk -v s="$abs" -v e="$abe" 'BEGIN {printf "%.0f", 100 * s / e}')%), $abfail failed; curl -c 100: $cn requests in $ce s, $crps/s, CPU $cs s, $cfail failed"
		AB_RPS+=("$abrps"); CURL_RPS+=("$crps")
	}
	baselines before
	printf '%8s %7s %8s %6s %8s %8s %7s %8s %9s %9s %9s %5s\n' rate probes runs/s cpu% late overlap failed dropped lag_p99 lag_max in_flight ok
	good=0 bad=0 rate=$MAX_START
	while [ "$rate" -le "$MAX_LIMIT" ]; do
		if try_rate "$rate"; then good=$rate; rate=$((rate + MAX_STEP)); else bad=$rate; break; fi
	done
	if [ "$bad" != 0 ]; then
		while [ $((bad - good)) -gt "$MAX_RES" ]; do
			mid=$(( (good + bad) / 2 / 100 * 100 ))
			[ "$mid" -le "$good" ] && break
			if try_rate "$mid"; then good=$mid; else bad=$mid; fi
		done
	fi
	baselines after
	ab_m=$(echo "${AB_RPS[*]}" | med)
	curl_m=$(echo "${CURL_RPS[*]}" | med)
	ratio=$(awk -v a="$good" -v b="$ab_m" 'BEGIN {printf "%.3f", a / b}')
	cratio=$(awk -v a="$curl_m" -v b="$ab_m" 'BEGIN {printf "%.3f", a / b}')
	[ "$bad" = 0 ] && bad="none up to $MAX_LIMIT"
	say ""
	say "highest sustained rate: $good probes/s (first rate not sustained: $bad); ab -c 100: $ab_m requests/s (mean of before/after: ${AB_RPS[*]}); kubemedicd/ab $ratio (goal >= 0.8); curl -c 100: $curl_m requests/s, curl/ab $cratio"
	SUMMARY+=("max_rate km_probes_per_s=$good ab_c100_rps=$ab_m km_ab_ratio=$ratio curl_c100_rps=$curl_m curl_ab_ratio=$cratio period_ms=$MAX_PERIOD_MS")
fi

say ""
say "## summary (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
for l in "${SUMMARY[@]}"; do say "  $l"; done
