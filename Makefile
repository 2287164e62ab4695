# The two commands: `make demo` (set up and run the product with demo data) and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench bench-report lint asterisk-stop

install:
	./scripts/install-deps.sh
	$(BIN)/callcenter asterisk install

demo: install
	$(BIN)/callcenter demo

# The whole suite on the embedded SQLite, then the web console's tests (not the browser ones)
# and the call path's end to end on PostgreSQL.
PG_TESTS := tests/web_console tests/e2e/test_call_path.py tests/e2e/test_order_lifecycle.py tests/e2e/test_statistics.py

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q -ra --durations=25
	$(BIN)/pytest -q -ra --durations=10 --database=postgres -m "not browser" $(PG_TESTS)

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
