# kubemedic — the two commands of the README, and their parts.
#
#   make run    install what is missing, build, start kubemedicd with an
#               embedded SQLite database and the example config, watching
#               the cluster of $KUBECONFIG or ~/.kube/config if one exists
#   make test   install what is missing, build, run every test: unit and
#               integration tests (plain and under ASan+UBSan), the Release
#               and clang builds, the fuzz targets for a bounded time, the
#               Bazel build and tests, and the e2e suite on a real control
#               plane
#
# Parts: deps tools build test-unit test-integration test-asan test-builds
#        test-fuzz test-bazel e2e demo bench bench-deps bench-<name> format clean

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

BUILD      ?= build
ASAN_BUILD ?= build-asan
RELEASE_BUILD ?= build-release
CLANG_BUILD   ?= build-clang
CACHE      := $(CURDIR)/.cache
JOBS       ?= $(shell nproc)
LISTEN     ?= 127.0.0.1:7070
DB         ?= kubemedic.db
CONFIG     ?= deploy/kubemedic.example.yaml
# The cluster make run watches, when the file exists: kubectl's choice
# ($KUBECONFIG, else ~/.kube/config; a list "a:b" is not a file, so none).
# KUBE= watches none.
KUBE       ?= $(or $(KUBECONFIG),$(HOME)/.kube/config)

# Debian packages the build and the tests need (util-linux and mount:
# unshare, setpriv and mount for the storage fault tests, which run as root).
DEB_PACKAGES := build-essential cmake ninja-build pkg-config \
	libgrpc-dev libgrpc++-dev protobuf-compiler-grpc protobuf-c-compiler \
	libprotobuf-c-dev libprotobuf-dev protobuf-compiler libsqlite3-dev \
	libcurl4-openssl-dev libcmocka-dev libyaml-dev libssl-dev sqlite3 \
	libcjson-dev \
	bazel-bootstrap valgrind nghttp2-client openssl locales clang \
	clang-format util-linux mount

# What the benchmarks need besides the build (bench/README.md): nginx and
# ab (probe_scale.sh), h2load (run.sh, callgrind.sh), valgrind's callgrind,
# /usr/bin/time, taskset and setsid, ss and nstat, ps.
BENCH_PACKAGES := nginx-light apache2-utils nghttp2-client valgrind time \
	util-linux iproute2 procps curl sqlite3 python3

# One target per script in bench/: bench-run is bench/run.sh, and so on.
BENCHES := bench-run bench-callgrind bench-probe-scale bench-wal-checkpoint \
	bench-e2e-scale bench-soak-kill bench-kube-decode bench-kube-scale \
	bench-recovery-latency bench-history-scale

GO         := go
GRPCURL    := $(CACHE)/bin/grpcurl
VENV       := $(CACHE)/venv
PYTHON     := $(VENV)/bin/python

.PHONY: test-format format run test deps tools build test-unit test-integration test-asan \
	test-builds test-fuzz test-bazel e2e demo bench bench-deps $(BENCHES) format clean

# The example configuration reads kubemedic.tokens: the first run creates it
# with an admin token for you (in kubemedic.token, mode 0600).
run: deps build
	@test -e kubemedic.tokens || { \
		./$(BUILD)/kubemedic token new "$${USER:-dev}" admins \
			--out kubemedic.token > kubemedic.tokens.new && \
		mv kubemedic.tokens.new kubemedic.tokens && \
		echo "kubemedicd: your admin token is in kubemedic.token:" \
		     "export KUBEMEDIC_TOKEN_FILE=$(CURDIR)/kubemedic.token"; }
	@echo "kubemedicd: listening on $(LISTEN), database $(DB), config $(CONFIG)"
	@kube=(); if [ -n "$(KUBE)" ] && [ -f "$(KUBE)" ]; then \
		kube=(--kubeconfig "$(KUBE)"); \
		echo "kubemedicd: watching the cluster of $(KUBE) (KUBE= for none)"; \
	fi; \
	set -x; exec ./$(BUILD)/kubemedicd --config $(CONFIG) --listen $(LISTEN) \
		--db $(DB) "$${kube[@]}"

test: deps tools test-format build test-unit test-integration test-asan test-builds \
	test-fuzz test-bazel e2e
	@echo "all tests passed"

# $(call apt_install,PACKAGES): installs only what is missing, so a
# prepared machine skips apt entirely.
define apt_install
	@missing=""; \
	for p in $(1); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call apt_install,$(DEB_PACKAGES))
	@if ! locale -a 2>/dev/null | grep -qi '^de_DE\.utf-\?8$$'; then \
		echo "generating the de_DE.UTF-8 locale (a decimal comma, for test_json)"; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo localedef -i de_DE -c -f UTF-8 de_DE.UTF-8; \
	fi

# Test tools outside Debian: grpcurl (Go module proxy), grpcio (PyPI).
tools: $(GRPCURL) $(VENV)/.done

$(GRPCURL):
	GOBIN=$(CACHE)/bin $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4

$(VENV)/.done: tests/integration/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/integration/requirements.txt
	touch $@

build:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	ninja -C $(BUILD) -j $(JOBS)

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-integration: build tools
	KM_BUILD=$(CURDIR)/$(BUILD) KM_GRPCURL=$(GRPCURL) \
		$(PYTHON) -m pytest -q tests/integration

test-asan: tools
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
		-DKM_SANITIZE=ON -DKM_BENCH=OFF >/dev/null
	ninja -C $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)
	KM_BUILD=$(CURDIR)/$(ASAN_BUILD) KM_GRPCURL=$(GRPCURL) KM_SANITIZED=1 \
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(PYTHON) -m pytest -q tests/integration

# What a packager builds (Release: -O3, where gcc finds more possibly
# uninitialized variables and truncations than at -O2) and a clang build
# with the fuzz targets (clang's warnings do not depend on -O, so Debug,
# the quickest), both with -Werror. Built, not run: the tests above ran on
# the everyday builds. One build directory each, so reruns are incremental.
test-builds:
	cmake -S . -B $(RELEASE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
		-DKM_WERROR=ON >/dev/null
	ninja -C $(RELEASE_BUILD) -j $(JOBS)
	CC=clang CXX=clang++ cmake -S . -B $(CLANG_BUILD) -G Ninja \
		-DCMAKE_BUILD_TYPE=Debug -DKM_WERROR=ON -DKM_FUZZ=ON >/dev/null
	ninja -C $(CLANG_BUILD) -j $(JOBS)

# Every libFuzzer target of tests/fuzz for FUZZ_SECONDS (30 s) each, from
# its seeds and dictionary, in $(CLANG_BUILD) (test-builds builds them; this
# builds what it needs if run alone). The corpora grow under
# $(CLANG_BUILD)/fuzz/corpus from run to run. A finding (crash-*, leak-*,
# timeout-*, oom-* in $(CLANG_BUILD)/fuzz) fails the run with the end of
# its log; replay it with the target and the file (tests/fuzz/README.md).
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := config selector http1 requests kube_watch kube_watch_pb rollup

test-fuzz:
	CC=clang CXX=clang++ cmake -S . -B $(CLANG_BUILD) -G Ninja \
		-DCMAKE_BUILD_TYPE=Debug -DKM_WERROR=ON -DKM_FUZZ=ON >/dev/null
	ninja -C $(CLANG_BUILD) -j $(JOBS) $(addprefix fuzz_,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
		dir=$(CLANG_BUILD)/fuzz; mkdir -p $$dir/corpus/$$t; \
		echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
		if ! (cd $$dir && ../tests/fuzz/fuzz_$$t \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 \
			-dict=$(CURDIR)/tests/fuzz/$$t.dict corpus/$$t \
			$(CURDIR)/tests/fuzz/seeds/$$t) >$$dir/$$t.log 2>&1; then \
			tail -n 40 $$dir/$$t.log; \
			echo "fuzz_$$t found something: $$dir/$$t.log"; \
			exit 1; \
		fi; \
		grep -h '^Done\|stat::number_of_executed_units' $$dir/$$t.log \
			| tr '\n' ' '; echo; \
	done

test-bazel:
	tests/check_bazel_sync.sh
	bazel --batch --output_user_root=$(CACHE)/bazel test \
		--jobs=$(JOBS) //...

e2e: deps build
	KM_BUILD=$(CURDIR)/$(BUILD) tests/e2e/run

# kubemedic on a local control plane while kubesim breaks and heals a node,
# a pod and a service (tests/e2e/demo; about a minute, stops all it starts).
demo: deps build
	KM_BUILD=$(CURDIR)/$(BUILD) tests/e2e/demo

bench-deps:
	$(call apt_install,$(BENCH_PACKAGES))

# Every benchmark at full size, one after the other: over an hour
# (bench/README.md). bench-<name> runs one script and passes it
# BENCH_ARGS, e.g. make bench-run BENCH_ARGS=--quick.
bench: deps bench-deps build tools
	bench/run.sh
	bench/callgrind.sh
	bench/probe_scale.sh
	bench/wal_checkpoint.py
	bench/e2e_scale.sh
	PYTHON=$(PYTHON) bench/soak_kill.sh
	bench/kube_decode.sh
	bench/kube_scale.sh
	bench/recovery_latency.sh
	$(BUILD)/bench_history_scale

bench-run: deps bench-deps build
	bench/run.sh $(BENCH_ARGS)

bench-callgrind: deps bench-deps build
	bench/callgrind.sh $(BENCH_ARGS)

bench-probe-scale: deps bench-deps build
	bench/probe_scale.sh $(BENCH_ARGS)

bench-wal-checkpoint: bench-deps
	bench/wal_checkpoint.py $(BENCH_ARGS)

# The control plane only (no kubemedicd yet); builds it from the Go module
# proxy on first use, as make e2e does.
bench-e2e-scale: bench-deps
	bench/e2e_scale.sh $(BENCH_ARGS)

# 100 SIGKILLs under load, every acknowledged write checked after each
# (about 5 minutes, bounded by SOAK_TIMEOUT); needs grpcio (make tools).
bench-soak-kill: deps build tools
	PYTHON=$(PYTHON) bench/soak_kill.sh $(BENCH_ARGS)

# Issue 10: JSON libraries and protobuf-c decoding the API server's
# answers. Installs its -dev packages itself and builds kmctl from the Go
# module proxy, as make e2e does.
bench-kube-decode: deps bench-deps
	bench/kube_decode.sh $(BENCH_ARGS)

# Issue 10: kubemedicd's initial sync, memory and CPU on the harness with
# NODES nodes and DEPLOYMENTS x REPLICAS pods, next to a client-go informer
# program (kmctl informer) in the same run.
bench-kube-scale: deps build
	bench/kube_scale.sh $(BENCH_ARGS)

# Issue 11: from a failing liveness probe to the pod's DELETE at the API
# server (a policy's restart_pod), and the engine's decision-to-request
# latency with 1,000 pods unhealthy at once and the budget limiting.
bench-recovery-latency: deps build
	bench/recovery_latency.sh $(BENCH_ARGS)

# Issue 12: bytes on disk and writer CPU per probe result, runs and
# rollups next to one results row per result, the same simulated stream
# through the real store (bench/history_scale.c; about 5 minutes).
bench-history-scale: deps build
	$(BUILD)/bench_history_scale $(BENCH_ARGS)

# clang-format (.clang-format) over our C sources, in place;
# tests/check_format.sh alone lists what it would change.
format: deps
	tests/check_format.sh --fix

# One formatting: fails listing what clang-format would change.
test-format: deps
	tests/check_format.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(RELEASE_BUILD) $(CLANG_BUILD) bazel-*
