# bench/lib.sh — sourced by the bench scripts: a private temporary
# directory and the processes a script starts, all gone when it exits.
#
#   bench_init PREFIX    sets TMP (mktemp -d /tmp/PREFIX.XXXXXX) and PIDS,
#                        and traps EXIT (cleanup) and INT/TERM (exit 130)
#   PIDS+=("$pid")       a process to stop (SIGTERM) at exit
#   say TEXT...          prints one line
#   make_pki             a test CA and certificates in $TMP/pki (below)
#   need_ghz             sets GHZ, installing ghz into $ROOT/.cache/bin from
#                        the Go module proxy when it is missing

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
	rm -rf "$TMP"
}

bench_init() {
	TMP=$(mktemp -d "/tmp/$1.XXXXXX")
	PIDS=()
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

say() { printf '%s\n' "$*"; }

# A CA, a server certificate for 127.0.0.1 and a client certificate
# (CN=bench, O=operators), ECDSA P-256, valid for a day, in $TMP/pki.
make_pki() {
	local d=$TMP/pki
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.crt" -days 1 \
		-subj /CN=kmbench-ca 2>/dev/null
	for who in server client; do
		local subj=/CN=127.0.0.1 ext="subjectAltName=IP:127.0.0.1"
		[ "$who" = client ] && subj=/O=operators/CN=bench ext="extendedKeyUsage=clientAuth"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/$who.key" -out "$d/$who.csr" -subj "$subj" 2>/dev/null
		openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.crt" \
			-CAkey "$d/ca.key" -CAcreateserial -days 1 \
			-extfile <(echo "$ext") -out "$d/$who.crt" 2>/dev/null
	done
}

GHZ_VERSION=v0.120.0
need_ghz() {
	GHZ=$ROOT/.cache/bin/ghz
	if [ ! -x "$GHZ" ]; then
		say "installing ghz $GHZ_VERSION into $ROOT/.cache/bin"
		GOBIN=$ROOT/.cache/bin go install \
			"github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
	fi
}
