# Wick's developer targets. `make help` lists them.
GO ?= go
FUZZTIME ?= 20s

.PHONY: help build build-openssl release test test-go test-openssl test-compat check vet fuzz bench bench-dtls

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/wick (stamped with the Git commit, shown by `wick version`)
	$(GO) build -buildvcs=auto -o bin/wick ./cmd/wick

build-openssl: ## build bin/wick with OpenSSL's RSA for device handshakes (cgo + libssl-dev)
	$(GO) build -buildvcs=auto -tags openssl -o bin/wick ./cmd/wick

release: ## the release binary: bin/wick with OpenSSL's RSA (3x faster device handshakes; cgo + libssl-dev), -trimpath
	CGO_ENABLED=1 $(GO) build -buildvcs=auto -trimpath -tags openssl -o bin/wick ./cmd/wick

test: vet ## every test: Go (race; SQLite, and PostgreSQL/NATS when configured) + client compatibility
	@# test-openssl runs beside test-go: the race suite's long tail (a few
	@# packages that mostly wait) leaves a core idle. Each target's output is
	@# printed whole when it ends.
	$(MAKE) --no-print-directory -j2 --output-sync=target test-go test-openssl
	$(MAKE) --no-print-directory test-compat

vet: ## go vet and gofmt check
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-go: ## Go tests with the race detector
	$(GO) test -race -count=1 ./...

test-openssl: ## the OpenSSL handshake key (-tags openssl); skipped when libssl-dev is missing
	@if [ -f /usr/include/openssl/evp.h ]; then \
	  $(GO) test -race -count=1 -tags openssl ./protocol/... ./internal/rsakey/... ./internal/p256/... ./internal/gateway/...; \
	else echo "test-openssl: SKIPPED: /usr/include/openssl/evp.h missing (apt-get install libssl-dev)"; fi

test-compat: ## particle-api-js and particle-cli against a real wick serve (needs node + npm)
	./compat/run.sh

fuzz: ## run every fuzzer for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

bench: ## benchmarks, for benchstat
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-dtls: ## Gen 3 server handshakes per CPU-second beside `openssl speed ecdsap256 ecdhp256`, alternating, both builds (docs/dtls.md#speed)
	$(GO) test -run '^$$' -bench ServerHandshake -benchtime 5x ./internal/p256/
	@if [ -f /usr/include/openssl/evp.h ]; then $(GO) test -tags openssl -run '^$$' -bench ServerHandshake -benchtime 5x ./internal/p256/; \
	else echo "bench-dtls: openssl build SKIPPED: /usr/include/openssl/evp.h missing"; fi
