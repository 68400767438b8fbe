# Developer entry points. `make test` is exactly what CI runs (see .ci/run).

GO      ?= go
PKGS    ?= ./...
BIN     ?= bin/filehub
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
# Fuzz time per target for `make fuzz`.
FUZZTIME ?= 10s
# golangci-lint v2, pinned so everyone lints with the same rules.
GOLANGCI_LINT_VERSION ?= v2.15.0

.PHONY: test test-short lint bench build fuzz clean

## test: the whole test suite with the race detector, writing coverage.out
test:
	$(GO) test -race -count=1 -coverprofile=coverage.out $(PKGS)

## test-short: the quick tests only (skips the real-binary and crash tests)
test-short:
	$(GO) test -race -count=1 -short $(PKGS)

## lint: golangci-lint with .golangci.yml
lint:
	@command -v golangci-lint >/dev/null 2>&1 || { \
		echo "golangci-lint is not installed; install it with:"; \
		echo "  go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)"; \
		exit 1; }
	golangci-lint run $(PKGS)

## bench: every benchmark, once, with memory statistics
bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

## build: the filehub binary in bin/
build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/filehub

## fuzz: each fuzz target for FUZZTIME (go test -fuzz takes one target at a time)
fuzz:
	@set -e; for dir in $$($(GO) list -f '{{.Dir}}' $(PKGS)); do \
		for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
			echo "== $$dir $$target"; \
			(cd $$dir && $(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) .); \
		done; \
	done

clean:
	rm -rf bin coverage.out
