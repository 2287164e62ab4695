# The two commands: `make demo` (set up and run the product with demo data) and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench bench-report lint asterisk-stop

install:
	./scripts/install-deps.sh
	$(BIN)/callcenter asterisk install

demo: install
	$(BIN)/callcenter demo

# The whole suite: the calls' end-to-end tests beside every other test (SQLite, then the web
# console's and the call path's tests on PostgreSQL), then the benchmarks' smoke runs alone.
test: install
	$(BIN)/ruff check .
	./scripts/run-tests.sh

bench: install
	@for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

# The README's benchmark table from BENCH_RUNS runs of `make bench` (benchmarks/report.py).
BENCH_RUNS ?= 3
bench-report: install
	@dir=benchmarks/.runs/$$(date -u +%Y%m%dT%H%M%SZ); mkdir -p $$dir; \
	for i in $$(seq 1 $(BENCH_RUNS)); do \
	  echo "run $$i: load average $$(cut -d' ' -f1-3 /proc/loadavg)" >> $$dir/load.txt; \
	  $(MAKE) -s bench > $$dir/run-$$i.jsonl || exit 1; \
	done; \
	$(BIN)/python benchmarks/report.py $$dir/run-*.jsonl --note "before each run, $$(paste -sd';' $$dir/load.txt)"

# Style, the layer contracts (pyproject.toml [tool.importlinter]) and the types ([tool.mypy]).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

asterisk-stop:
	$(BIN)/callcenter asterisk stop
