# The two commands: `make demo` (set up and run the product with demo data) and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench lint asterisk-stop

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

# Style, the layer contracts (pyproject.toml [tool.importlinter]) and the types ([tool.mypy]).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

asterisk-stop:
	$(BIN)/callcenter asterisk stop
