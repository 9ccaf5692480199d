#!/usr/bin/env bash
# record_pb_fixtures.sh: record the API server's protobuf answers about pods
# next to its JSON answers about the same pods, into tests/unit/kube_fixtures
# (test_kube_decode_pb reads them: the two decoders must make the same
# objects of them).
#
# The pods are the JSON fixtures' pods (pod-*.json, recorded by
# record_fixtures.sh): each is made again in namespace pbfix from its
# metadata and spec, pinned to a node no one runs (fixture-node-a; kubesim
# leaves it alone, the pod GC removes it 40 s after the recording), owned by
# a ConfigMap (a controller reference that no controller acts on), and
# given its recorded status as the kubelet would (a merge patch of
# /status). One pod more, "probed", is annotated kubemedic.io/probe: "true"
# with httpGet, tcpSocket, grpc and exec probes, for the mirror's fields.
# Then, at one resourceVersion (resourceVersionMatch=Exact: the same bytes
# of etcd, twice):
#   pb-pods-list.json   the PodList in JSON (Accept: application/json)
#   pb-pods-list.pb     the PodList in protobuf ("k8s\0" + runtime.Unknown)
# and, as kubemedicd asks (sendInitialEvents, ending after 1 s):
#   pb-pods-watch.pb    the watch in protobuf (stream=watch: frames)
#   pb-pods-watch.jsonl the same watch in JSON
#   pb-status-404.pb    a GET of a pod that does not exist, in protobuf
#
# Usage: KM_E2E_ENV=STATE/env tests/e2e/record_pb_fixtures.sh [OUTDIR]
# on a control plane already up (tests/e2e/cluster/up); takes a few seconds
# and deletes its namespace at the end.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/tests/unit/kube_fixtures}
: "${KM_E2E_ENV:?KM_E2E_ENV: the env file of a control plane that is up}"
# shellcheck disable=SC1090
source "$KM_E2E_ENV"

UA=kubemedic-fixture-recorder # not curl: the API server pretty-prints for curl
NS=pbfix
PB=application/vnd.kubernetes.protobuf
log() { echo "record_pb_fixtures: $*" >&2; }

api() {
	local m=$1 p=$2
	shift 2
	curl -sS --fail-with-body -A "$UA" --cacert "$KM_E2E_CA" \
		--cert "$KM_E2E_ADMIN_CERT" --key "$KM_E2E_ADMIN_KEY" \
		-H "Accept: ${ACCEPT:-application/json}" -X "$m" "$@" "$KM_E2E_APISERVER$p"
}
create() { api POST "$1" -H 'Content-Type: application/json' --data-binary @- >/dev/null; }
mpatch() { api PATCH "$1" -H 'Content-Type: application/merge-patch+json' --data-binary @- >/dev/null; }

cleanup() { api DELETE "/api/v1/namespaces/$NS" >/dev/null 2>&1 || true; }
trap cleanup EXIT

jq -nc --arg ns $NS '{apiVersion:"v1",kind:"Namespace",metadata:{name:$ns}}' | create /api/v1/namespaces
jq -nc '{apiVersion:"v1",kind:"ConfigMap",metadata:{name:"owner"}}' | create "/api/v1/namespaces/$NS/configmaps"
owner=$(api GET "/api/v1/namespaces/$NS/configmaps/owner" | jq -c \
	'[{apiVersion:"v1",kind:"ConfigMap",name:.metadata.name,uid:.metadata.uid,controller:true,blockOwnerDeletion:true}]')

for f in "$root"/tests/unit/kube_fixtures/pod-*.json; do
	name=$(jq -r .metadata.name "$f")
	jq -c --arg ns $NS --argjson owner "$owner" '{apiVersion:"v1",kind:"Pod",
		metadata:{name:.metadata.name,namespace:$ns,labels:(.metadata.labels//{}),
			annotations:(.metadata.annotations//{}),ownerReferences:$owner},
		spec:(.spec | if .nodeName then .nodeName = "fixture-node-a" else . end
			| del(.volumes) | .containers |= map(del(.volumeMounts))
			| if .initContainers then .initContainers |= map(del(.volumeMounts)) else . end)}' "$f" |
		create "/api/v1/namespaces/$NS/pods"
	jq -c '{status:.status}' "$f" | mpatch "/api/v1/namespaces/$NS/pods/$name/status"
done

# The mirror's pod: every kind of probe, a named port, headers, a host.
jq -nc --arg ns $NS --argjson owner "$owner" '{apiVersion:"v1",kind:"Pod",
	metadata:{name:"probed",namespace:$ns,ownerReferences:$owner,
		annotations:{"kubemedic.io/probe":"true"},labels:{app:"probed"}},
	spec:{nodeName:"fixture-node-a",containers:[
		{name:"web",image:"nginx:1.27",ports:[{name:"http",containerPort:8080},{containerPort:9090}],
		 livenessProbe:{httpGet:{path:"/healthz",port:"http",scheme:"HTTPS",
			httpHeaders:[{name:"X-Probe",value:"kubemedic"},{name:"X-Empty",value:""}]},
			initialDelaySeconds:3,periodSeconds:7,timeoutSeconds:2,failureThreshold:4},
		 readinessProbe:{tcpSocket:{port:9090},periodSeconds:5,successThreshold:2}},
		{name:"rpc",image:"example/rpc:1",
		 livenessProbe:{grpc:{port:50051,service:"health"}},
		 readinessProbe:{httpGet:{path:"/ready",port:"missing"}}},
		{name:"cli",image:"busybox:1",
		 livenessProbe:{exec:{command:["true"]}},
		 readinessProbe:{httpGet:{host:"10.0.0.1",path:"/",port:80}}}]}}' |
	create "/api/v1/namespaces/$NS/pods"
jq -nc --arg t "$(date -u +%FT%TZ)" '{status:{phase:"Running",podIP:"198.18.7.7",podIPs:[{ip:"198.18.7.7"}],
	startTime:$t,message:"ünïcødé ✓ — not ASCII",
	conditions:[{type:"PodScheduled",status:"True",lastTransitionTime:$t},{type:"Ready",status:"True",lastTransitionTime:$t}],
	containerStatuses:[{name:"web",ready:true,restartCount:0,image:"nginx:1.27",imageID:"",state:{running:{startedAt:$t}}},
		{name:"rpc",ready:true,restartCount:2,image:"example/rpc:1",imageID:"",state:{running:{startedAt:$t}},
		 lastState:{terminated:{exitCode:-1,reason:"Error",startedAt:$t,finishedAt:$t}}},
		{name:"cli",ready:false,restartCount:0,image:"busybox:1",imageID:"",state:{waiting:{reason:"ContainerCreating"}}}]}}' |
	mpatch "/api/v1/namespaces/$NS/pods/probed/status"

P=/api/v1/namespaces/$NS/pods
rv=$(api GET "$P" | jq -r .metadata.resourceVersion)
api GET "$P?resourceVersion=$rv&resourceVersionMatch=Exact" -o "$out/pb-pods-list.json"
ACCEPT=$PB api GET "$P?resourceVersion=$rv&resourceVersionMatch=Exact" -o "$out/pb-pods-list.pb"
w="$P?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"
ACCEPT="$PB;stream=watch" api GET "$w" -o "$out/pb-pods-watch.pb" --max-time 10
api GET "$w" -o "$out/pb-pods-watch.jsonl" --max-time 10
code=$(curl -sS -A "$UA" --cacert "$KM_E2E_CA" --cert "$KM_E2E_ADMIN_CERT" --key "$KM_E2E_ADMIN_KEY" \
	-H "Accept: $PB" -o "$out/pb-status-404.pb" -w '%{http_code}' "$KM_E2E_APISERVER$P/absent")
[[ $code == 404 ]] || { log "pb-status-404.pb: HTTP $code"; exit 1; }
for f in pb-pods-list.json pb-pods-list.pb pb-pods-watch.pb pb-pods-watch.jsonl pb-status-404.pb; do
	log "recorded $f ($(wc -c <"$out/$f") bytes)"
done
n=$(jq '.items | length' "$out/pb-pods-list.json")
log "$n pods at resourceVersion $rv"
