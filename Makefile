# Common tasks. `make test` is the one command that runs the whole suite,
# on a fresh machine as in CI.
.PHONY: test build run bench bench-go bench-suite fuzz

test:
	./scripts/test

build:
	go build -o ssehub ./cmd/ssehub

run:
	go run ./cmd/ssehub serve

# The Go benchmarks, then the scenario suite against ssehub and the
# yardstick (scripts/bench; sizes from BENCH_* variables, results in
# bench-results/).
bench: bench-go bench-suite

bench-go:
	go test -run='^$$' -bench=. -benchmem ./...

bench-suite:
	./scripts/bench

# Run every fuzz target briefly (FUZZTIME per target).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$(go list ./...); do \
	  for f in $$(go test -list='^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; go test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done
