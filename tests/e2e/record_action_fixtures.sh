#!/usr/bin/env bash
# record_action_fixtures.sh: (re)record tests/unit/kube_fixtures/actions/,
# the API server's answers to the writes of recovery actions
# (service/kube/km_kube_action.h): a pod deleted with a uid precondition, a
# node cordoned, a rollout restarted, a pod evicted, and the ways each is
# refused. test_kube_action classifies every file.
#
# The requests are the ones km_kube_action builds (method, path,
# Content-Type, body), sent with curl as the harness's admin (client
# certificate) or, for the 403, as a ServiceAccount with no rights. Every
# fixture is the server's bytes, unchanged: Accept: application/json and a
# User-Agent that is not curl (the API server pretty-prints JSON for curl).
# The 429 of a PodDisruptionBudget is also kept in protobuf, and its
# response headers (Retry-After or not) beside it.
#
# Usage: tests/e2e/record_action_fixtures.sh [OUTDIR]
#   (default tests/unit/kube_fixtures/actions). Starts the control plane
#   (cluster/up, 2 kubesim nodes) in a temporary folder and stops it on exit
#   (cluster/down, from an EXIT trap, also on failure); with KM_E2E_ENV set
#   (STATE/env of a control plane that is up) it uses that one instead and
#   deletes its namespace at the end. Takes about 20 s after up. Needs the
#   built binaries (tests/e2e/cluster/build), curl and jq.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/tests/unit/kube_fixtures/actions}
export GOFLAGS=${GOFLAGS:--p=2}

for tool in curl jq; do
	command -v "$tool" >/dev/null || { echo "record_action_fixtures: needs $tool" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kubemedic-action-fixtures.XXXXXX")
state=$work/state
stage=$work/out
mkdir -p "$stage"
own_plane=0
NS=actionfix

log() { echo "record_action_fixtures: $*" >&2; }

cleanup() {
	local rc=$?
	if ((own_plane)) && [[ -e $state/.kubemedic-e2e ]]; then
		if ((rc != 0)); then
			log "failed (exit $rc); last log lines:"
			for f in "$state"/logs/*.log; do
				[[ -e $f ]] && { echo "--- $f" >&2; tail -n 10 "$f" >&2; }
			done
		fi
		if ! "$here/cluster/down" "$state" >&2; then
			log "down failed; keeping $work"
			exit 1
		fi
	elif ((!own_plane)) && [[ -n ${KM_E2E_APISERVER:-} ]]; then
		api DELETE "/api/v1/namespaces/$NS" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [[ -n ${KM_E2E_ENV:-} ]]; then
	# shellcheck disable=SC1090
	source "$KM_E2E_ENV"
else
	own_plane=1
	KM_E2E_NODES=2 "$here/cluster/up" "$state" >/dev/null
	# shellcheck disable=SC1091
	source "$state/env"
fi

UA=kubemedic-fixture-recorder

# api METHOD PATH [curl args...]: admin request, body on stdout, fails on >= 400.
api() {
	local m=$1 p=$2
	shift 2
	curl -sS --fail-with-body -A "$UA" --cacert "$KM_E2E_CA" \
		--cert "$KM_E2E_ADMIN_CERT" --key "$KM_E2E_ADMIN_KEY" \
		-H "Accept: application/json" -X "$m" "$@" "$KM_E2E_APISERVER$p"
}
create() { api POST "$1" -H 'Content-Type: application/json' --data-binary @- >/dev/null; }
jtrue() { api GET "$1" | jq -e "$2"; }
until_ok() { # DESC TIMEOUT CMD...
	local desc=$1 end=$((SECONDS + $2))
	shift 2
	until "$@" >/dev/null 2>&1; do
		((SECONDS < end)) || { log "timed out waiting for $desc"; return 1; }
		sleep 0.5
	done
}
uid_of() { api GET "$1" | jq -r .metadata.uid; }

# act FILE WANT-CODE METHOD PATH CONTENT-TYPE BODY [curl args]: one write as
# km_kube_action builds it; the answer's bytes into FILE (its headers into
# FILE's .headers when KEEP_HEADERS=1). Identity: the admin's certificate
# unless the curl args give a bearer token.
act() {
	local f=$1 want=$2 m=$3 p=$4 ct=$5 body=$6 code
	shift 6
	local who=(--cert "$KM_E2E_ADMIN_CERT" --key "$KM_E2E_ADMIN_KEY")
	[[ " $* " == *" Authorization: Bearer "* ]] && who=()
	local data=()
	[[ -n $body ]] && data=(-H "Content-Type: $ct" --data-binary "$body")
	local hdr=/dev/null
	[[ ${KEEP_HEADERS:-0} == 1 ]] && hdr=$stage/${f%.*}.headers
	code=$(curl -sS -A "$UA" --cacert "$KM_E2E_CA" "${who[@]}" \
		-H "Accept: ${ACCEPT:-application/json}" -X "$m" "${data[@]}" "$@" \
		-D "$hdr" -o "$stage/$f" -w '%{http_code}' "$KM_E2E_APISERVER$p")
	if [[ $code != "$want" ]]; then
		log "$f: wanted HTTP $want, got $code: $(head -c 400 "$stage/$f")"
		return 1
	fi
	log "recorded $f (HTTP $code, $(wc -c <"$stage/$f") bytes)"
}

# What km_kube_action sends.
delete_opts() { # UID [GRACE]
	jq -nc --arg uid "$1" --arg g "${2:-}" \
		'{apiVersion:"v1",kind:"DeleteOptions",preconditions:{uid:$uid}}
		 + (if $g == "" then {} else {gracePeriodSeconds:($g|tonumber)} end)'
}
eviction() { # NAME NS UID
	jq -nc --arg n "$1" --arg ns "$2" --arg uid "$3" \
		'{apiVersion:"policy/v1",kind:"Eviction",metadata:{name:$n,namespace:$ns},
		  deleteOptions:{apiVersion:"v1",kind:"DeleteOptions",preconditions:{uid:$uid}}}'
}
SMP=application/strategic-merge-patch+json
P=/api/v1/namespaces/$NS/pods
A=/apis/apps/v1/namespaces/$NS

# --- objects ----------------------------------------------------------------
node=${KM_E2E_NODE_PREFIX}0
pin="{\"kubernetes.io/hostname\":\"$node\"}"
jq -nc --arg ns $NS '{apiVersion:"v1",kind:"Namespace",metadata:{name:$ns}}' | create /api/v1/namespaces
until_ok "ServiceAccount $NS/default" 60 api GET "/api/v1/namespaces/$NS/serviceaccounts/default"
for p in victim replaced evictable; do
	jq -nc --arg n $p --argjson pin "$pin" '{apiVersion:"v1",kind:"Pod",metadata:{name:$n,labels:{app:$n}},
		spec:{nodeSelector:$pin,containers:[{name:"app",image:"docker.io/library/nginx:1.27"}]}}' | create "$P"
done
for d in web guarded; do
	jq -nc --arg n $d --argjson pin "$pin" --argjson r "$([[ $d == web ]] && echo 1 || echo 2)" \
		'{apiVersion:"apps/v1",kind:"Deployment",metadata:{name:$n,labels:{app:$n}},
		  spec:{replicas:$r,selector:{matchLabels:{app:$n}},
		   template:{metadata:{labels:{app:$n}},
		    spec:{nodeSelector:$pin,containers:[{name:"app",image:"docker.io/library/nginx:1.27"}]}}}}' |
		create "$A/deployments"
done
jq -nc '{apiVersion:"policy/v1",kind:"PodDisruptionBudget",metadata:{name:"guarded"},
	spec:{minAvailable:2,selector:{matchLabels:{app:"guarded"}}}}' |
	create "/apis/policy/v1/namespaces/$NS/poddisruptionbudgets"
# A ServiceAccount with no rights at all, and a token of it.
jq -nc '{apiVersion:"v1",kind:"ServiceAccount",metadata:{name:"nobody"}}' |
	create "/api/v1/namespaces/$NS/serviceaccounts"
nobody=$(api POST "/api/v1/namespaces/$NS/serviceaccounts/nobody/token" \
	-H 'Content-Type: application/json' \
	--data-binary '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":600}}' |
	jq -r .status.token)

for p in victim replaced evictable; do
	until_ok "pod $p running" 60 jtrue "$P/$p" '.status.phase == "Running"'
done
until_ok "Deployment web available" 60 jtrue "$A/deployments/web" '.status.availableReplicas == 1'
until_ok "PodDisruptionBudget guarded settled" 90 jtrue \
	"/apis/policy/v1/namespaces/$NS/poddisruptionbudgets/guarded" \
	'.status.observedGeneration == .metadata.generation and .status.currentHealthy == 2 and .status.disruptionsAllowed == 0'

# --- restart pod: DELETE with preconditions.uid -----------------------------
victim=$(uid_of "$P/victim")
replaced=$(uid_of "$P/replaced")
act delete-pod-409-uid.json 409 DELETE "$P/replaced" application/json \
	"$(delete_opts "$victim")"
act delete-pod-200.json 200 DELETE "$P/victim" application/json \
	"$(delete_opts "$victim" 30)"
act delete-pod-404.json 404 DELETE "$P/no-such-pod" application/json \
	"$(delete_opts "$victim")"
act delete-pod-403.json 403 DELETE "$P/replaced" application/json \
	"$(delete_opts "$replaced")" -H "Authorization: Bearer $nobody"

# --- cordon / uncordon: PATCH the node, strategic merge --------------------
act cordon-200.json 200 PATCH "/api/v1/nodes/$node" $SMP '{"spec":{"unschedulable":true}}'
act uncordon-200.json 200 PATCH "/api/v1/nodes/$node" $SMP '{"spec":{"unschedulable":false}}'

# --- rollout restart: what kubectl rollout restart sends --------------------
at=$(date -u +%FT%TZ)
act rollout-restart-200.json 200 PATCH "$A/deployments/web" $SMP \
	"{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/restartedAt\":\"$at\"}}}}}"
# Refused: a value the API validates (422) and a body that is no JSON (400).
act patch-422.json 422 PATCH "$A/deployments/web" $SMP '{"spec":{"replicas":-1}}'
act patch-400.json 400 PATCH "$A/deployments/web" $SMP '{"spec":'
# A write from a stale read: the other kind of 409 (re-read and retry).
stale=$(api GET "$A/deployments/web" | jq -c '.metadata.resourceVersion = "1"')
act update-409-conflict.json 409 PUT "$A/deployments/web" application/json "$stale"

# --- evict: POST pods/NAME/eviction ------------------------------------------
evictable=$(uid_of "$P/evictable")
act eviction-409-uid.json 409 POST "$P/evictable/eviction" application/json \
	"$(eviction evictable $NS "$victim")"
act eviction-201.json 201 POST "$P/evictable/eviction" application/json \
	"$(eviction evictable $NS "$evictable")"
act eviction-404.json 404 POST "$P/no-such-pod/eviction" application/json \
	"$(eviction no-such-pod $NS "$evictable")"
guarded=$(api GET "$P?labelSelector=app%3Dguarded" | jq -r '.items[0].metadata.name')
guarded_uid=$(uid_of "$P/$guarded")
KEEP_HEADERS=1 act eviction-429-pdb.json 429 POST "$P/$guarded/eviction" application/json \
	"$(eviction "$guarded" $NS "$guarded_uid")"
ACCEPT=application/vnd.kubernetes.protobuf act eviction-429-pdb.pb 429 POST \
	"$P/$guarded/eviction" application/json "$(eviction "$guarded" $NS "$guarded_uid")"

# --- each file shows what its name says --------------------------------------
check() { # FILE JQ
	jq -e "$2" "$stage/$1" >/dev/null || { log "$1 fails its check: $2: $(head -c 600 "$stage/$1")"; exit 1; }
}
status() { echo ".kind == \"Status\" and .code == $1 and .reason == \"$2\""; }
check delete-pod-200.json '.kind == "Pod" and .metadata.name == "victim" and (.metadata.deletionTimestamp != null)'
check delete-pod-409-uid.json "$(status 409 Conflict) and (.message | test(\"UID in (the )?precondition\"))"
check delete-pod-404.json "$(status 404 NotFound)"
check delete-pod-403.json "$(status 403 Forbidden)"
check cordon-200.json '.kind == "Node" and .spec.unschedulable == true'
check uncordon-200.json '.kind == "Node" and (.spec.unschedulable // false) == false'
check rollout-restart-200.json ".kind == \"Deployment\" and .spec.template.metadata.annotations[\"kubectl.kubernetes.io/restartedAt\"] == \"$at\""
check patch-422.json "$(status 422 Invalid)"
check patch-400.json "$(status 400 BadRequest)"
check update-409-conflict.json "$(status 409 Conflict) and (.message | test(\"Precondition\") | not)"
check eviction-409-uid.json "$(status 409 Conflict) and (.message | test(\"UID in (the )?precondition\"))"
check eviction-201.json '.kind == "Status" and .code == 201 and .status == "Success"'
check eviction-404.json "$(status 404 NotFound)"
check eviction-429-pdb.json "$(status 429 TooManyRequests) and .details.causes[0].reason == \"DisruptionBudget\""
head -c 4 "$stage/eviction-429-pdb.pb" | cmp -s - <(printf 'k8s\0') ||
	{ log "eviction-429-pdb.pb is not protobuf"; exit 1; }

mkdir -p "$out"
for f in "$stage"/*; do
	cp "$f" "$out/"
done
log "wrote $(find "$stage" -type f | wc -l) files to $out"
