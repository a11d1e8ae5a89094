# The two commands of the README: `make run` and `make test`.
GO        ?= go
FUZZTIME  ?= 100000x
PG_URL    ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable

.PHONY: run build deps test test-go test-pg fuzz e2e vet bench bench-smoke

run: node_modules/socket.io-client
	$(GO) run .

node_modules/socket.io-client: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

build:
	$(GO) build -o bin/paystatus .

deps:
	.ci/deps.sh

# Every test: vet, the Go suite on SQLite and on Postgres (with -race), the
# fuzz targets briefly, the Node end-to-end and browser tests, and the
# benchmark smoke run.
test: deps vet test-go test-pg fuzz e2e bench-smoke

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) vet ./...

test-go:
	$(GO) test -race -count=1 ./...

test-pg:
	TEST_DATABASE_URL='$(PG_URL)' $(GO) test -race -count=1 ./payment/... ./server/

# Runs each Fuzz target of each package for FUZZTIME. A count, not a duration:
# with a duration Go 1.26's fuzz coordinator can report a spurious "context
# deadline exceeded" at the deadline (golang/go#75804, fixed in Go 1.27).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

e2e:
	cd e2e && node --test --test-concurrency=1 --test-timeout=300000 $$(find . -path ./node_modules -prune -o -name '*.test.js' -print | sort)

bench:
	bench/run.sh

bench-smoke:
	bench/run.sh --smoke
