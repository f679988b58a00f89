# kefu — see README.md. `make run` and `make test` install what is missing first.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target
KEFU := $(CARGO_TARGET_DIR)/debug/kefu

.PHONY: deps build run test test-rust test-browser test-faults test-deploy test-deps bench bench-sfu bench-ring bench-verify bench-moderation bench-upstream-loss bench-join bench-capacity bench-soak fuzz-smoke lint fmt clean

deps:
	@./deploy/install-deps.sh

build: deps
	$(CARGO) build --locked --workspace --all-targets

## Start kefu on 127.0.0.1:8080 with all state under ./data; prints the page links.
## The same build command as `make test`: a plain `--bin kefu` build resolves features
## without the dev-dependencies and would compile much of the tree a second time.
run: build
	mkdir -p data
	KEFU_DATA_DIR=$(CURDIR)/data $(KEFU) serve

## Every test tier: unit + integration (Rust), browser end-to-end (Chromium), then the
## fault suite.
test: build
	$(MAKE) --no-print-directory test-deploy test-deps test-rust test-browser test-faults

## The deployment files (compose, Kubernetes, Grafana, Dockerfile) against their
## schemas, offline (deploy/check-deploy.sh; its validators come from a registry on
## first use, so it runs outside the network namespace).
test-deploy:
	./deploy/check-deploy.sh

## The dependency audit: licenses (no copyleft), bans, sources, and advisories when a
## local RustSec database is there (deploy/check-deps.sh, deny.toml, docs/security.md).
test-deps:
	./deploy/check-deps.sh

# WebRTC tests run in a loopback-only network namespace; everything is built before
# entering it (the namespace has no network, so cargo runs offline). A throwaway
# PostgreSQL server runs beside them so the store tests cover both databases, and a
# Ceph radosgw so recordings are also stored in a real external S3 server, and a
# Redis for the cluster seams.
test-rust:
	./deploy/netns-run.sh ./deploy/with-postgres.sh ./deploy/with-radosgw.sh ./deploy/with-redis.sh $(CARGO) test --locked --offline --workspace

# Same build command as `build`: a plain `--bin kefu` resolves features without the
# dev-dependencies and would compile much of the tree a second time. Every kefu process
# of the suite logs at debug into one folder, then every line is scanned for personal
# data and secrets in clear (tests/e2e/scan-logs.mjs): one hit fails the tier.
test-browser:
	$(CARGO) build --locked --workspace --all-targets
	rm -rf $(CARGO_TARGET_DIR)/e2e-logs
	TEST_LOG_DIR=$(CARGO_TARGET_DIR)/e2e-logs ./deploy/netns-run.sh ./deploy/with-postgres.sh ./deploy/with-radosgw.sh ./deploy/with-redis.sh node --test --test-concurrency=1 tests/e2e/
	node tests/e2e/scan-logs.mjs $(CARGO_TARGET_DIR)/e2e-logs

## The fault suite (docs/reliability.md): each fault under calls in progress, its
## figures (calls dropped, recordings lost, media lost, time to recover) asserted and
## tabulated. The object store stays down TEST_FAULT_OUTAGE_SECS (600). A mount
## namespace of its own lets it fill a small tmpfs spool.
FAULT_FIGURES := $(CARGO_TARGET_DIR)/fault-figures.jsonl
test-faults: build
	$(CARGO) build --locked --offline -p kefu-tests --features faults --test faults
	rm -f $(FAULT_FIGURES)
	TEST_FAULT_FIGURES=$(FAULT_FIGURES) ./deploy/netns-run.sh unshare --mount --propagation private ./deploy/with-postgres.sh ./deploy/with-radosgw.sh ./deploy/with-redis.sh $(CARGO) test --locked --offline -p kefu-tests --features faults --test faults -- --test-threads=1
	TEST_FAULT_FIGURES=$(FAULT_FIGURES) ./deploy/netns-run.sh ./deploy/with-postgres.sh ./deploy/with-radosgw.sh ./deploy/with-redis.sh node --test --test-concurrency=1 tests/e2e/faults/*.fault.mjs
	node tests/e2e/faults/table.mjs $(FAULT_FIGURES)

## Benchmarks (numbers go to BENCHMARKS.md). Dev profile: every dependency and the
## recorder are built at opt-level 2 there, and a release build of the whole tree
## costs ~20 minutes on these machines.
bench: deps
	$(CARGO) bench --locked --profile dev -p kefu-recorder --bench recorder
	$(CARGO) bench --locked --profile dev -p kefu-beauty --bench beauty
	$(CARGO) bench --locked --profile dev -p kefu-vision --bench vision
	$(CARGO) bench --locked --profile dev -p kefu-media-server --bench pipeline
	$(CARGO) bench --locked --profile dev -p kefu-media-server --bench moderation
	$(MAKE) --no-print-directory bench-sfu
	$(MAKE) --no-print-directory bench-ring
	$(MAKE) --no-print-directory bench-verify
	$(MAKE) --no-print-directory bench-moderation
	$(MAKE) --no-print-directory bench-upstream-loss
	$(MAKE) --no-print-directory bench-join
	$(MAKE) --no-print-directory bench-capacity
	$(MAKE) --no-print-directory bench-soak

## Time from a customer's tap to the ring in the workbench, through real pages
## (tests/e2e/ring-latency.mjs; KEFU_BIN picks another build to compare).
bench-ring: build
	./deploy/netns-run.sh node tests/e2e/ring-latency.mjs

## Time from a face check's last step to the result on the page (phone page, real
## engine, photos filmed by a canvas camera; tests/e2e/verify-latency.mjs).
bench-verify: build
	./deploy/netns-run.sh node tests/e2e/verify-latency.mjs

## Join latency, one node against a cluster (2 signaling + 2 media nodes on Redis,
## PostgreSQL and Ceph radosgw), side by side (tests/src/bin/kefu-join-bench.rs).
bench-join: build
	./deploy/netns-run.sh ./deploy/with-postgres.sh ./deploy/with-radosgw.sh ./deploy/with-redis.sh $(CARGO_TARGET_DIR)/debug/kefu-join-bench --calls 20

## Calls per media node: calls added step by step on one media node until forwarding
## delay p99 passes 50 ms, forwarding only and with beauty on every agent
## (tests/src/bin/kefu-capacity-bench.rs; BENCH_CAPACITY_ARGS adds flags).
BENCH_CAPACITY_ARGS ?=
bench-capacity: build
	./deploy/netns-run.sh ./deploy/with-postgres.sh ./deploy/with-radosgw.sh ./deploy/with-redis.sh $(CARGO_TARGET_DIR)/debug/kefu-capacity-bench $(BENCH_CAPACITY_ARGS)

## Load and soak on ONE kefu process (role all, its embedded SQLite and object store,
## so all its CPU and memory is one pid), recording and moderation on: with beauty on
## every agent, calls added until one breaks a limit (customers' agent video < 25 fps,
## delay p99 > 100 ms, delivery < 99 %) and the last count held 10 minutes; without
## beauty, 20 calls for 10 minutes. RSS growth and per call, CPU per part, dropped
## calls, every recording ready and ffprobe-playable (tests/src/bin/kefu-soak-bench.rs).
## BENCH_SOAK_ARGS runs it once with those flags instead, e.g. a short smoke run:
## BENCH_SOAK_ARGS="--beauty off --calls 2 --hold-secs 40 --sample-secs 5".
BENCH_SOAK_ARGS ?=
KEFU_SOAK := ./deploy/netns-run.sh $(CARGO_TARGET_DIR)/debug/kefu-soak-bench
bench-soak: build
ifeq ($(strip $(BENCH_SOAK_ARGS)),)
	$(KEFU_SOAK) --beauty on --find-max
	$(KEFU_SOAK) --beauty off --calls 20
else
	$(KEFU_SOAK) $(BENCH_SOAK_ARGS)
endif

## What the agent sees of a customer whose uplink loses 5 % of its packets: freezes
## and jitter-buffer delay per 20 s window (tests/e2e/upstream-loss.mjs; KEFU_BIN
## compares another build).
bench-upstream-loss: build
	./deploy/netns-run.sh node tests/e2e/upstream-loss.mjs

## Moderation's detection latency through real pages, p50/p95 (tests/e2e/moderation-latency.mjs).
bench-moderation: build
	./deploy/netns-run.sh node tests/e2e/moderation-latency.mjs

## The SFU load benchmark: the same calls through kefu before issue 18 (built by the
## script from BENCH_SFU_BEFORE_REV, `none` to skip), kefu now and Janus, in that order
## each round, then the kernel floors, at 40 and at 100 calls (an empty
## BENCH_SFU_ARGS_100 skips the second; deploy/bench-sfu.sh, tests/src/load). A
## release build: Janus is Debian's optimised build, so kefu is measured optimised too.
BENCH_SFU_ARGS ?= --calls 40 --seconds 20 --warmup 5 --rounds 2
BENCH_SFU_ARGS_100 ?= --calls 100 --seconds 20 --warmup 5 --rounds 1
bench-sfu: deps
	$(CARGO) build --locked --release --workspace --bin kefu --bin kefu-load
	CARGO="$(CARGO)" BENCH_SFU_PROFILE_DIR=release ./deploy/bench-sfu.sh $(BENCH_SFU_ARGS)
ifneq ($(strip $(BENCH_SFU_ARGS_100)),)
	CARGO="$(CARGO)" BENCH_SFU_PROFILE_DIR=release ./deploy/bench-sfu.sh $(BENCH_SFU_ARGS_100)
endif

## Every fuzz target (fuzz/) for FUZZ_SECONDS each, from the seed corpus (real
## captures, fuzz/capture-seeds.mjs); a crash fails it and leaves the input under
## fuzz/artifacts. cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP on this toolchain.
## No sanitizer: the code is safe Rust (unsafe_code = forbid); panics are what we hunt.
FUZZ_SECONDS ?= 20
fuzz-smoke: deps
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --version 0.13.2 --locked
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build -s none
	cd fuzz && for t in $$(RUSTC_BOOTSTRAP=1 $(CARGO) fuzz list); do \
	  mkdir -p corpus/$$t seeds/$$t; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -s none $$t corpus/$$t seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; \
	done

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf tests/e2e/artifacts
