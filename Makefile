# tfsync — see README.md.
SHELL := /bin/bash
export AWS_EC2_METADATA_DISABLED := true
CARGO ?= cargo

.PHONY: all build release demo test unit lint bench servers-up servers-down clean

all: build

build:
	$(CARGO) build --locked

release:
	$(CARGO) build --locked --release
	@ls -l target/release/tfsync

## Run the main job end to end on a local S3 server (installs and starts it).
demo: build
	scripts/demo

## Unit tests, then every integration test against the three real servers
## (Ceph RGW, SeaweedFS, moto), which are started here and stopped afterwards.
test: build
	$(CARGO) test --locked --no-run
	$(CARGO) test --locked --lib --bins
	scripts/test-servers up
	status=0; export TFSYNC_REQUIRE_SERVERS=1; \
	  { $(CARGO) test --locked --tests -- --skip race:: --test-threads=$${TEST_THREADS:-4} && \
	    $(CARGO) test --locked --test it race:: -- --nocapture; } || status=$$?; \
	  scripts/test-servers down; exit $$status

## Benchmarks and the load test (scripts/bench: status, pull, lock, load; scripts/bench-backup:
## backup and migration against aws s3 sync and rclone; scripts/bench-memory: peak memory of
## every command on a 200 MB state); BENCH_SMALL=1 for CI's reduced counts.
bench:
	scripts/bench
	scripts/bench-backup
	scripts/bench-memory

## Only the unit tests and the directory-store tests (no servers).
unit:
	$(CARGO) test --locked --lib --bins
	$(CARGO) test --locked --test it conformance::dir


lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

servers-up:
	scripts/test-servers up

servers-down:
	scripts/test-servers down

clean:
	-scripts/test-servers down
	$(CARGO) clean
