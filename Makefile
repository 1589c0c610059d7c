# Signet. `make run` starts a server on the embedded store; `make test` runs
# the whole suite against a real PostgreSQL (started and removed for the run
# when none is reachable at $SIGNET_TEST_DATABASE_URL or 127.0.0.1:5432).
GO ?= go
STATICCHECK_VERSION ?= v0.8.2

.PHONY: run test test-short bench bench-check lint build cross scale soak pgbouncer-check

run:
	$(GO) run ./cmd/signet-server --allow-anonymous-writes

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...  # static, as deploy/Dockerfile.* build them

test:
	./scripts/test-deps.sh
	$(GO) run ./internal/pgtest/cmd/withpg -- $(GO) test -race -count=1 -timeout 8m -tags pkcs11 ./...
	# Scale tests are built without -race (see client/bins_test.go).
	$(GO) test -count=1 -timeout 5m -run 'HashedBins' ./client/
	# The differential test against go-tuf and tuf-js (internal/difftest), likewise.
	$(GO) test -count=1 -timeout 5m ./internal/difftest/
	cd deploy/test && $(GO) test -count=1 ./...
	cd deploy/containerdtest && $(GO) test -count=1 ./...
	# Smoke test of the bench: fails only if a figure cannot be measured, never on speed.
	BENCH_QUICK=1 $(GO) run ./bench

test-short:
	$(GO) test -count=1 ./...

bench:
	$(GO) run ./bench

bench-check:
	$(GO) run ./bench check bench/results/latest.json

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(MAKE) cross

# The CLI, the client library and the binaries build on Windows and macOS
# too (the cache lock is behind build tags: client/lock_*.go); vet compiles
# the client's and the CLI's tests for them as well.
cross:
	for os in windows darwin; do \
		GOOS=$$os $(GO) build ./cmd/... ./client/... && \
		GOOS=$$os $(GO) vet ./client/... ./cmd/signet/ ./internal/signetcli/ ./internal/cli/ || exit 1; \
	done

# Outside CI (long, and they measure the machine): N = 1, 2, 4 replicas on
# one PostgreSQL (SCALE_REPLICAS, SCALE_PHASE, …), and a 10-minute soak at
# 80% of the measured capacity (SOAK_DURATION=2m while developing). See
# docs/capacity.md; results in bench/results/scale.json and soak.json.
scale:
	$(GO) run ./bench scale

soak:
	$(GO) run ./bench soak

# Two replicas through PgBouncer in transaction mode (needs pgbouncer
# installed): what docs/capacity.md recommends, against what it warns of.
pgbouncer-check:
	$(GO) run ./bench pgbouncer
