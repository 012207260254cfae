# Playground: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/playground

.PHONY: run build test test-short chromium fuzz bench screenshot web-vendor vet clean

## run: build and serve on http://localhost:8080 (embedded SQLite, demo models, no keys)
run: build
	./$(BIN) serve

build:
	$(GO) build -o $(BIN) ./cmd/playground

## test: 1 000 runs of each fuzz target on the stream parsing that is ours, then the whole suite
## with the race detector (installs Chromium for the browser tests if missing)
test: chromium
	$(GO) vet ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZSMOKE)
	$(GO) test -race -count=1 -timeout 15m ./...

## chromium: Debian's Chromium for the browser tests
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## fuzz: run each fuzz target for longer than the short run in `make test` (FUZZTIME=1m)
## make test counts executions rather than seconds: with a duration, Go 1.26's fuzzing
## coordinator can fail a target with a bare "context deadline exceeded" as the time runs
## out on a busy machine (golang/go#75804, fixed in Go 1.27). A count has no deadline.
FUZZTIME  ?= 30s
FUZZSMOKE ?= 1000x
FUZZPKGS  ?= ./providers/...
fuzz:
	@for pkg in $$($(GO) list $(FUZZPKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## bench: the benchmark report, docs/benchmarks.md (not part of make test; about 20 minutes;
## installs Centrifugo into a temporary directory; BENCHFLAGS="-quick" for a smoke run)
BENCHFLAGS ?= -warmup 1s -window 3s
bench:
	$(GO) run ./cmd/playbench all $(BENCHFLAGS) -out docs/benchmarks.md

## screenshot: regenerate docs/screenshot.png of a finished three-model comparison and
## docs/screenshot-phone.png of the same on a phone
screenshot: chromium
	PLAYGROUND_SCREENSHOT=$(CURDIR)/docs/screenshot.png $(GO) test -count=1 -run '^TestScreenshot$$' ./api/
	PLAYGROUND_SCREENSHOT_PHONE=$(CURDIR)/docs/screenshot-phone.png $(GO) test -count=1 -run '^TestScreenshotPhone$$' ./api/

## web-vendor: fetch the page's libraries again, exactly the versions in api/web/vendor/VERSIONS,
## checked against the registry's sha512 (needs npm; nothing else in the build does)
web-vendor:
	./scripts/web-vendor.sh

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
