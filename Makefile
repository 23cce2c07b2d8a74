# forge: build, test, lint, demo. `make` builds a static bin/forge.

GO      ?= go
TAGS    := containers_image_openpgp containers_image_docker_daemon_stub exclude_graphdriver_zfs exclude_graphdriver_btrfs
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo 0.1.0-dev)
LDFLAGS := -s -w -X github.com/forge-build/forge/cli.Version=$(VERSION)
# A pinned staticcheck, run through the Go module proxy (nothing to install).
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Every package but the end-to-end tests, which need `make test`'s set-up.
UNIT_PKGS = $(shell $(GO) list -tags "$(TAGS)" ./... | grep -vx 'github.com/forge-build/forge/tests')

export CGO_ENABLED := 0

.PHONY: all build test unit lint demo clean fuzz

all: build

# The binary is built with cgo, linked statically: image/v5 keeps its blob-info cache (which
# compressed blob a layer became, and where it was pushed) in SQLite, and without it every
# new forge process uploads layers again that a registry already has. netgo/osusergo keep
# glibc's NSS out of the static binary. urfave_cli_no_docs leaves out the CLI library's
# man-page generator, whose Markdown package's initialisation every forge start paid for.
build:
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags "$(LDFLAGS) -linkmode external -extldflags -static" \
		-tags "$(TAGS) netgo osusergo urfave_cli_no_docs" -o bin/forge .

# End-to-end run as root: installs what it needs, then tests as an unprivileged user.
test:
	tests/run.sh

# forge against Buildah side by side, as root (installs Buildah and what else it needs) and
# never part of `make test`; writes docs/benchmarks.md. BENCH_QUICK=1: 1 repetition, small
# sizes, no docs. More knobs (BENCH_REPS, BENCH_CASES, ...) at the top of bench/run.sh.
.PHONY: bench
bench:
	BENCH_QUICK="$(BENCH_QUICK)" bench/run.sh

# Each native fuzz target runs briefly (FUZZTIME each); CI (.ci/run) runs this before the tests.
FUZZTIME ?= 10s
# Minimizing a new input is bounded by a count, not by the default 60 s: each call of
# FuzzUnpackLayer makes and removes directories, and a 20 KB input took the whole FUZZTIME
# to minimize, so the run made no progress and sometimes failed on the minimizer's deadline.
FUZZMIN ?= 100x
fuzz:
	$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz '^FuzzParseDockerfile$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./build/
	$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz '^FuzzParseChanges$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./commit/
	$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz '^FuzzReproducibleTar$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./commit/
	$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz '^FuzzIgnoreRules$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./build/
	@# Layer extraction is fuzzed as an unprivileged user: a regression could write wherever
	@# the fuzzing user can.
	d=$$(mktemp -d) && chmod 0755 $$d && $(GO) test -c -fuzz '^FuzzUnpackLayer$$' -tags "$(TAGS)" -o $$d/evil.test ./tests/internal/evil/ && \
	  mkdir $$d/cache && chown nobody $$d/cache 2>/dev/null; \
	  cd tests/internal/evil && $$( [ "$$(id -u)" = 0 ] && echo setpriv --reuid=nobody --regid=nogroup --clear-groups ) \
	  $$d/evil.test -test.run '^$$' -test.fuzz '^FuzzUnpackLayer$$' -test.fuzztime $(FUZZTIME) -test.fuzzminimizetime $(FUZZMIN) -test.fuzzcachedir $$d/cache; \
	  s=$$?; rm -rf $$d; exit $$s

unit:
	$(GO) test -tags "$(TAGS)" $(UNIT_PKGS)

lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags "$(TAGS)" ./...
	@# rootless/early.c is built only with cgo, as `make build` does.
	CGO_ENABLED=1 $(GO) vet -tags "$(TAGS)" ./rootless
	$(GO) run $(STATICCHECK) -tags "$(TAGS)" ./...

# Builds forge and shows it working offline on a tiny busybox image.
demo: build
	tests/demo.sh

clean:
	rm -rf bin
