# crust: build, run, test, benchmark and fuzz. Needs only Go (the version in go.mod)
# and, for the recipes, bash; Go modules come from the module proxy.
#
#   make run                     three crust-node daemons on loopback, live peers view
#                                (Ctrl-C stops them); NODES=5, RUN_SECONDS=10
#   make demo                    the in-process demo (crust-demo); DEMOFLAGS="-nodes 5"
#   make test                    go vet, then every test with the race detector
#   make fuzz FUZZTIME=10s       every fuzz target, each for FUZZTIME
#   make bench                   benchmarks into bench/new.txt (+ benchstat summary), the
#                                idle-connection memory into bench/memory.txt, crust beside
#                                go-libp2p into bench/libp2p.txt, the ratio tables into
#                                bench/ratios.md
#   make test-nat                as root: the real-NAT tests in network namespaces
#                                (sim/testbed; installs its Debian packages)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO ?= go
# Packages to test, benchmark and fuzz.
PKGS ?= ./...
# How long each fuzz target runs.
FUZZTIME ?= 30s
# Flags for the in-process demo, e.g. make demo DEMOFLAGS="-nodes 5 -loglevel info".
DEMOFLAGS ?=
# make run: how many daemons, and how long to run (0: until Ctrl-C).
NODES ?= 3
RUN_SECONDS ?= 0
# Extra flags for go test, e.g. TESTFLAGS="-run Exchange -v".
TESTFLAGS ?=
# How many times each benchmark runs; benchstat wants several.
BENCHCOUNT ?= 5
# Packages whose tests need the real-NAT testbed (sim/testbed); make test-nat runs
# them with CRUST_TESTBED=1. Add a package here when it gains such tests.
NATPKGS ?= ./sim/testbed/...

# GOFLAGS reaches every go command. -mod=readonly (Go's default, stated so that a
# GOFLAGS from the environment cannot turn it off silently) keeps go.mod and go.sum
# as committed: dependencies change only on purpose, and hollywood stays at v1.0.5.
# Parallelism (-p for packages, -parallel for tests and fuzz workers) is left at its
# default, GOMAXPROCS: 2 on the project's 2-core machines; more only adds contention.
# The flags start from the effective GOFLAGS (environment or go env -w), so this adds
# to a local setting instead of replacing it.
GOFLAGS := $(strip -mod=readonly $(filter-out -mod=%,$(shell $(GO) env GOFLAGS 2>/dev/null)))
export GOFLAGS

BIN := bin
CMDS := $(filter-out internal,$(notdir $(wildcard cmd/*)))

.PHONY: build run demo test bench fuzz lint deps clean

## build: compile every package and put the commands (cmd/*) into bin/
build:
	$(GO) build $(PKGS)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...
	@echo "built: $(addprefix $(BIN)/,$(CMDS))"

## run: build crust-node, start NODES daemons on loopback (own data dirs in a temp dir, beacon on 127.255.255.255) and show their peers live; Ctrl-C stops them
run:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/crust-node ./cmd/crust-node
	NODES=$(NODES) RUN_SECONDS=$(RUN_SECONDS) scripts/run-nodes.sh $(BIN)/crust-node

## demo: build and run the in-process demo (three nodes in one process on 127.0.0.1; Ctrl-C stops it)
demo:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/crust-demo ./cmd/crust-demo
	./$(BIN)/crust-demo $(DEMOFLAGS)

## test: go vet, then every test once with the race detector
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(TESTFLAGS) $(PKGS)

## test-nat: as root: install the testbed's Debian packages (only the missing ones), then run NATPKGS's tests behind real NAT in network namespaces; leaves no namespace or process behind
# testbed.sh deps installs without letting a package start its daemon and fails if
# coturn, stund or miniupnpd runs in the root namespace. reap removes every testbed
# whose test process is gone: before the run (an earlier run killed mid-way), and on
# any exit of this recipe, failure and Ctrl-C included. The tests' own cleanup
# removes their testbeds as they finish; -timeout keeps the run under 7 minutes.
TESTBED := sim/testbed/testbed.sh
.PHONY: test-nat
test-nat:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "test-nat: needs root (network namespaces, iptables, apt-get): run sudo make test-nat"; \
		exit 1; \
	fi
	@trap 'bash $(TESTBED) reap' EXIT; trap 'exit 130' INT TERM; \
	bash $(TESTBED) deps; \
	bash $(TESTBED) reap; \
	CRUST_TESTBED=1 $(GO) test -count=1 -v -timeout 6m -run . $(TESTFLAGS) $(NATPKGS)

## sim: the simulator: the NAT matrix (table, heatmap in sim-matrix.svg; fails if a cell differs from theory), then the scale run with SIM_NODES nodes (more crust-sim scale flags in SIM_FLAGS)
# 300 nodes with beacon LANs take about 2.5 minutes here; 1,000 with -beacons=false about 5.
SIM_NODES ?= 300
SIM_FLAGS ?=
.PHONY: sim
sim:
	$(GO) run ./cmd/crust-sim matrix -svg sim-matrix.svg
	$(GO) run ./cmd/crust-sim scale -nodes $(SIM_NODES) $(SIM_FLAGS)

## bench: benchmarks BENCHCOUNT times into bench/new.txt, then benchstat (vs bench/old.txt if present); idle-connection memory once into bench/memory.txt; crust beside go-libp2p (bench/libp2p, a module of its own) BENCHCOUNT times into bench/libp2p.txt; the ratio tables (bench/ratios) into bench/ratios.md
bench:
	@mkdir -p bench
	$(GO) test -run='^$$' -bench=. -skip='IdleConnections' -benchmem -count=$(BENCHCOUNT) $(PKGS) | tee bench/new.txt
	$(GO) test -run='^$$' -bench='IdleConnections' -benchtime=1x -count=1 . | tee bench/memory.txt
	cd bench/libp2p && $(GO) test -run='^$$' -bench=. -benchmem -count=$(BENCHCOUNT) . | tee ../libp2p.txt
	@if ! grep -q '^Benchmark' bench/new.txt; then \
		echo "bench: no benchmarks found"; exit 0; \
	fi; \
	files=bench/new.txt; \
	if [ -f bench/old.txt ]; then files="bench/old.txt bench/new.txt"; fi; \
	echo "--- benchstat $$files"; \
	if ! $(GO) run golang.org/x/perf/cmd/benchstat@latest $$files 2>bench/benchstat.err; then \
		echo "bench: benchstat is not available (see bench/benchstat.err); raw results are in bench/new.txt"; \
	fi; \
	echo "bench: to compare a later run with this one: mv bench/new.txt bench/old.txt"
	@echo "--- ratios (medians; the README's Performance tables)"
	$(GO) run ./bench/ratios bench/new.txt bench/libp2p.txt bench/memory.txt | tee bench/ratios.md

## fuzz: run every fuzz target (go test -list '^Fuzz') for FUZZTIME each
# A duration -fuzztime races the fuzz coordinator's own deadline: on a busy machine a
# target can end with "context deadline exceeded" and no failing input (a known Go
# flake). That case is reported and skipped; any other failure, or a failing input
# written to testdata/fuzz, fails the target.
# -fuzzminimizetime=1000x: Go minimizes every input that finds new coverage before
# fuzzing on, for up to 60 s by default, in a number of calls quadratic in the input's
# length. With FUZZTIME=10s the first long inputs kept both workers minimizing to the
# end (FuzzRootDescription: 12 executions counted in 10 s). 1000 calls still cut most
# of an input's tail; a failing input is minimized as far, then written.
fuzz:
	@found=0; flaked=0; \
	pkgs=$$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' $(PKGS)); \
	for pkg in $$pkgs; do \
		list=$$($(GO) test -list '^Fuzz' "$$pkg"); \
		dir=$$($(GO) list -f '{{.Dir}}' "$$pkg"); \
		for target in $$(grep '^Fuzz' <<<"$$list" || true); do \
			found=$$((found + 1)); \
			echo "--- fuzz $$pkg $$target for $(FUZZTIME)"; \
			corpus="$$dir/testdata/fuzz/$$target"; \
			before=$$({ ls -A "$$corpus" 2>/dev/null || true; } | wc -l); \
			out=$$(mktemp); \
			if $(GO) test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=1000x "$$pkg" 2>&1 | tee "$$out"; then \
				rm -f "$$out"; continue; \
			fi; \
			after=$$({ ls -A "$$corpus" 2>/dev/null || true; } | wc -l); \
			if [ "$$after" = "$$before" ] && grep -q 'context deadline exceeded' "$$out" \
				&& ! grep -q 'Failing input written' "$$out"; then \
				echo "fuzz: $$target stopped on the fuzztime deadline race, no failing input: not counted as a failure"; \
				flaked=$$((flaked + 1)); rm -f "$$out"; continue; \
			fi; \
			rm -f "$$out"; echo "fuzz: $$target failed"; exit 1; \
		done; \
	done; \
	echo "fuzz: $$found target(s) ran for $(FUZZTIME) each ($$flaked ended on the deadline race)"

## lint: gofmt must list no file, go vet must pass
lint:
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then \
		echo "lint: these files need gofmt -w:"; echo "$$unformatted"; exit 1; \
	fi
	$(GO) vet $(PKGS)
	@echo "lint: ok"

## deps: check that Go is installed and fetch the Go modules (no system packages needed yet)
deps:
	@command -v $(GO) >/dev/null || { \
		echo "deps: '$(GO)' not found: install Go $$(sed -n 's/^go //p' go.mod) or newer from https://go.dev/dl/"; exit 1; }
	@$(GO) version
	$(GO) mod download
	$(GO) mod verify

## clean: remove built binaries and benchmark output
clean:
	rm -rf $(BIN) bench/new.txt bench/memory.txt bench/libp2p.txt bench/ratios.md bench/benchstat.err sim-matrix.svg

## help: list the targets
.PHONY: help
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)
