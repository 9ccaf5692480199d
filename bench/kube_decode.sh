#!/usr/bin/env bash
# bench/kube_decode.sh — which library decodes the Kubernetes API server's
# answers (issue 10): jansson, json-c, cJSON (Debian's) on the JSON the API
# server sends, protobuf-c on its protobuf (application/vnd.kubernetes.protobuf,
# protoc-c's code from k8s.io/api and k8s.io/apimachinery's generated.proto),
# each decoding a PodList and a watch stream into what the pod rule reads.
#
#   bench/kube_decode.sh [--pods N] [--events M] [--rounds R]
#                        [--callgrind-pods P] [--callgrind-only] [--keep DIR]
#
# Installs the missing -dev packages (libjansson-dev, libjson-c-dev,
# libcjson-dev), builds kmctl (tests/e2e/cluster, Go module proxy) and
# bench_kube_decode with the k8s.io protos in proto/k8s.io (the versions go.mod
# names), writes a list of N pods (30,000) and a watch stream of M events
# (1,000) in both encodings with kmctl podlist, and runs bench_kube_decode
# with R rounds (5): time, peak memory, ratios to jansson. Then, unless
# --callgrind-pods 0, instructions per pod and per watch event under
# callgrind on a list of P pods (1,000); --callgrind-only skips the timed
# run. --keep DIR keeps the inputs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KM_BUILD:-$ROOT/build}
PODS=30000
EVENTS=1000
ROUNDS=5
CG_PODS=1000
CG_ONLY=0
KEEP=""
while [ $# -gt 0 ]; do
	case "$1" in
	--pods) PODS=$2; shift ;;
	--events) EVENTS=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--callgrind-pods) CG_PODS=$2; shift ;;
	--callgrind-only) CG_ONLY=1 ;;
	--keep) KEEP=$2; shift ;;
	*) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
	shift
done

. "$ROOT/bench/lib.sh"
bench_init kmkubedecode

missing=""
for p in libjansson-dev libjson-c-dev libcjson-dev libprotobuf-c-dev \
	protobuf-c-compiler valgrind; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing:$missing"
	sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
fi

# kmctl; the k8s.io protos are the repository's (proto/k8s.io, the
# versions go.mod names).
CLUSTER=$ROOT/tests/e2e/cluster
export GOFLAGS=-p=2
(cd "$CLUSTER" && go build -o "$TMP/kmctl" ./cmd/kmctl)
cmake -S "$ROOT" -B "$BUILD" -G Ninja >/dev/null
ninja -C "$BUILD" bench_kube_decode >/dev/null
BIN=$BUILD/bench_kube_decode

if [ "$CG_ONLY" = 0 ]; then
	DATA=${KEEP:-$TMP}
	mkdir -p "$DATA"
	say "## kmctl podlist: $PODS pods, $EVENTS watch events"
	"$TMP/kmctl" podlist --pods "$PODS" --json "$DATA/pods.json" \
		--proto "$DATA/pods.pb" --watch-events "$EVENTS" \
		--watch-json "$DATA/watch.jsonl" --watch-proto "$DATA/watch.pb"

	say "## bench_kube_decode, $ROUNDS rounds"
	say "versions: jansson $(pkg-config --modversion jansson)," \
		"json-c $(pkg-config --modversion json-c)," \
		"cJSON $(pkg-config --modversion libcjson)," \
		"protobuf-c $(pkg-config --modversion libprotobuf-c);" \
		"load average $(cut -d' ' -f1-3 /proc/loadavg)"
	"$BIN" --json "$DATA/pods.json" --proto "$DATA/pods.pb" \
		--watch-json "$DATA/watch.jsonl" --watch-proto "$DATA/watch.pb" \
		--rounds "$ROUNDS"
fi

[ "$CG_PODS" -gt 0 ] || exit 0
CG_EVENTS=$((CG_PODS / 5))
say ""
say "## callgrind: $CG_PODS pods, $CG_EVENTS watch events"
"$TMP/kmctl" podlist --pods "$CG_PODS" --json "$TMP/cg.json" \
	--proto "$TMP/cg.pb" --watch-events "$CG_EVENTS" \
	--watch-json "$TMP/cg.jsonl" --watch-proto "$TMP/cg.wpb"
say "| candidate | Ir per pod (list) | ratio | Ir per watch event | ratio |"
say "| --- | ---: | ---: | ---: | ---: |"
base_l="" base_e=""
for c in jansson json-c cjson cjson-arena protobuf-c protobuf-c-arena; do
	ir=()
	# run_list* : gcc may name its clone run_list.isra.0
	for fn in run_list run_events; do
		valgrind --tool=callgrind --collect-atstart=no \
			--toggle-collect="$fn*" \
			--callgrind-out-file="$TMP/cg.$c.$fn" \
			"$BIN" --json "$TMP/cg.json" --proto "$TMP/cg.pb" \
			--watch-json "$TMP/cg.jsonl" --watch-proto "$TMP/cg.wpb" \
			--only "$c" --rounds 1 >/dev/null 2>"$TMP/cg.log"
		ir+=("$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$TMP/cg.$c.$fn")")
	done
	per_pod=$((ir[0] / CG_PODS))
	per_ev=$((ir[1] / CG_EVENTS))
	base_l=${base_l:-$per_pod}
	base_e=${base_e:-$per_ev}
	awk -v c="$c" -v l="$per_pod" -v e="$per_ev" -v bl="$base_l" \
		-v be="$base_e" 'BEGIN { printf "| %s | %d | %.2f | %d | %.2f |\n",
			c, l, l / bl, e, e / be }'
done
