# Playground: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/playground

.PHONY: run build static check test test-short tools chromium fuzz fuzz-smoke bench soak loadtest screenshot web-vendor vet clean

## run: build and serve on http://localhost:8080 (embedded SQLite, demo models, no keys)
run: build
	./$(BIN) serve

## build: bin/playground, the release binary (see static): what you run is what ships, and a
## first `make test` after `make run` finds the dependencies compiled for its vet and release test.
build:
	CGO_ENABLED=0 $(GO) build $(STATICFLAGS) -o $(BIN) ./cmd/playground

## static: the release binary, exactly as the Dockerfile builds it (the Dockerfile runs this
## target): no cgo (SQLite is pure Go), no local paths, no symbol table. The release test
## in cmd/playground builds it the same way and runs it with an empty environment.
## Its packages are compiled without DWARF (-dwarf=false): -s -w strips it from the binary anyway,
## and leaving it out saves about a tenth of the compiling. vet compiles with STATICBUILD too.
STATIC      ?= bin/playground-static
STATICBUILD := -trimpath -gcflags=all=-dwarf=false
STATICFLAGS := $(STATICBUILD) -ldflags='-s -w'
static:
	CGO_ENABLED=0 $(GO) build $(STATICFLAGS) -o $(STATIC) ./cmd/playground

## check: what CI checks before the tests (.ci/check): go.mod tidy, no large tracked files,
## macOS and Windows builds, no reference outside the repository
check:
	.ci/check

## test: vet, 1 000 inputs of each fuzz target on the stream parsing that is ours (fuzz-smoke),
## then the whole suite with the race detector. What the tests drive besides Go is installed
## first if missing (tools).
## vet compiles the dependencies as `make static` does (no cgo, STATICBUILD), so the release test's
## `make static` finds them compiled: a first run compiles everything twice (that and the race
## build), not three times. Most tests wait on streams, leases and timeouts rather than the CPU,
## so TESTPARALLEL of them run at once within a package, and TESTPACKAGES packages at once.
## go test starts the packages' tests in the order the packages are named, each once its test
## binary is linked (every run links them again), so cmd/playground, the longest, is named first:
## its dependencies, nearly all of the others', are compiled first at full width, and its tests
## start as soon as it is linked, while the other packages are linked and tested beside it.
## The browser tests that need a comparison still running when a viewer comes (which failed beside
## another package when they raced the demo models' pace) hold a model open until then;
## TESTPACKAGES=1 runs the packages one after another. Three at a time: cmd/playground takes one
## slot for its whole run, and the other packages, each linked and then run, share the other two.
## Six tests at a time in a package: cmd/playground's mostly wait (on streams, restarts and
## failovers), and its browser tests share idle tabs rather than each starting a browser context.
## The race build leaves out DWARF, as the release build does: stack traces and race reports read
## the binary's own tables, not DWARF, and a debugger is not run on make test's binaries. That saves
## about a tenth of compiling each package, and a fifth of linking each test binary, which every run
## does again. fuzz-smoke builds with the same flags, so the suite finds its packages compiled.
TESTBUILD := -race -gcflags=all=-dwarf=false -ldflags=-w
TESTPARALLEL ?= 6
TESTPACKAGES ?= 3
test: tools
	$(MAKE) --no-print-directory vet
	$(MAKE) --no-print-directory fuzz-smoke
	$(GO) test $(TESTBUILD) -count=1 -p $(TESTPACKAGES) -parallel $(TESTPARALLEL) -timeout 15m ./cmd/playground ./...

## tools: Debian's chromium (the browser tests), curl and jq (the README walkthrough test), nginx
## (the load-balancer test and make loadtest, which run it with a configuration of their own), each
## only if missing, with apt-get: that needs root on Debian or Ubuntu. Elsewhere, install them with
## your package manager; without them those tests fail (they never skip).
TOOLS := chromium curl jq nginx
tools:
	@missing=$$(for t in $(TOOLS); do command -v $$t >/dev/null 2>&1 || printf ' %s' $$t; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing$$missing for the tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing$$missing: install with your package manager (make installs them with apt-get as root)." >&2; \
			echo "The tests that need them will fail." >&2; \
		fi; \
	fi

## chromium: the same as tools (the browser tests' old name for it)
chromium: tools

## fuzz: run each fuzz target for FUZZTIME (FUZZTIME=1m for longer), with coverage guidance: a
## build of its own, every dependency instrumented (minutes of compiling the first time).
FUZZTIME  ?= 30s
FUZZPKGS  ?= ./providers/...
fuzz:
	@for pkg in $$($(GO) list $(FUZZPKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## fuzz-smoke: make test's short run, FUZZSMOKE inputs of each fuzz target (after its seeds), in the
## race-built test binary that the suite builds anyway, so it costs a link, not a build of its own:
## mutation without coverage guidance, which 1 000 inputs would hardly use, under the race detector.
## It counts executions rather than seconds: with a duration, Go 1.26's fuzzing coordinator can fail
## a target with a bare "context deadline exceeded" as the time runs out on a busy machine
## (golang/go#75804, fixed in Go 1.27). A count has no deadline. The targets run all at once, one
## fuzzing process each: a target's two seconds are mostly the coordinator waiting, not the CPU.
## Their outputs follow in order. A failing input is written to the package's testdata/fuzz, as
## with go test -fuzz.
FUZZSMOKE ?= 1000x
fuzz-smoke:
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && n=0 && : >"$$dir/targets" && \
	for pkg in $$($(GO) list $(FUZZPKGS)); do \
		n=$$((n+1)); bin="$$dir/$$n.test"; \
		$(GO) test $(TESTBUILD) -c -o "$$bin" $$pkg || exit 1; \
		[ -x "$$bin" ] || continue; \
		src=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for f in $$("$$bin" -test.list '^Fuzz' | grep '^Fuzz'); do \
			echo "$$pkg $$f $$n" >>"$$dir/targets"; \
			(cd "$$src" && "$$bin" -test.run '^$$' -test.fuzz "^$$f$$" -test.fuzztime $(FUZZSMOKE) \
				-test.parallel 1 -test.fuzzcachedir "$$dir/cache" >"$$dir/$$n.$$f.log" 2>&1; \
				echo $$? >"$$dir/$$n.$$f.rc") & \
		done; \
	done; \
	wait; failed=0; \
	while read -r pkg f n; do \
		echo "== $$pkg $$f"; grep -v 'without coverage guidance' "$$dir/$$n.$$f.log"; \
		[ "$$(cat "$$dir/$$n.$$f.rc")" = 0 ] || { echo "FAIL $$pkg $$f" >&2; failed=1; }; \
	done <"$$dir/targets"; \
	exit $$failed

## bench: the benchmark report, docs/benchmarks.md (not part of make test; about 35 minutes;
## installs Centrifugo into a temporary directory; BENCHFLAGS="-quick" for a smoke run). The
## fan-out runs beside the floor, and beside the playground built from BENCHBASE (default main;
## empty: none), old and new alternating in one run
BENCHFLAGS ?= -warmup 1s -window 3s
BENCHBASE ?= main
bench:
	@set -e; base=$$(mktemp -d); trap 'rm -rf "$$base"' EXIT; flags=""; \
	if [ -n "$(BENCHBASE)" ]; then \
		git archive "$(BENCHBASE)" | tar -x -C "$$base"; \
		(cd "$$base" && $(GO) build -o "$$base/playground-base" ./cmd/playground); \
		flags="-baseline-bin $$base/playground-base"; \
	fi; \
	$(GO) run ./cmd/playbench all $(BENCHFLAGS) $$flags -out docs/benchmarks.md

## soak: two instances over a throwaway PostgreSQL cluster and a redis-server of its own, under
## load for SOAKTIME (10 minutes), the database and Redis each restarted once; not part of make test
SOAKTIME ?= 10m
soak:
	$(GO) run ./cmd/playbench soak -duration $(SOAKTIME)

## loadtest: three instances behind Debian's nginx (installed by tools), round robin, no sticky
## sessions, over a throwaway PostgreSQL cluster and a redis-server of its own: LOADTIME (5 minutes)
## of 200 comparisons at a time of four demo models with 20 WebSocket viewers each, all through the
## balancer; one instance killed (SIGKILL) halfway; not part of make test
LOADTIME ?= 5m
LOADFLAGS ?=
loadtest: tools
	$(GO) run ./cmd/playbench lb -duration $(LOADTIME) $(LOADFLAGS)

## screenshot: regenerate docs/screenshot.png of a two-turn conversation of two models,
## docs/screenshot-phone.png of a three-model comparison on a phone and
## docs/screenshot-leaderboard.png of the leaderboard after eight blind comparisons
screenshot: tools
	PLAYGROUND_SCREENSHOT=$(CURDIR)/docs/screenshot.png $(GO) test -count=1 -run '^TestScreenshotConversation$$' ./cmd/playground/
	PLAYGROUND_SCREENSHOT_PHONE=$(CURDIR)/docs/screenshot-phone.png $(GO) test -count=1 -run '^TestScreenshotPhone$$' ./cmd/playground/
	PLAYGROUND_SCREENSHOT_LEADERBOARD=$(CURDIR)/docs/screenshot-leaderboard.png $(GO) test -count=1 -run '^TestScreenshotLeaderboard$$' ./cmd/playground/

## web-vendor: fetch the page's libraries again, exactly the versions in api/web/vendor/VERSIONS,
## checked against the registry's sha512 (needs npm; nothing else in the build does)
web-vendor:
	./scripts/web-vendor.sh

## vet: go vet, built as make static builds (see test)
vet:
	CGO_ENABLED=0 $(GO) vet $(STATICBUILD) ./...

clean:
	rm -rf bin
