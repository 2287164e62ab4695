# The two commands: `make demo` (set up and run the product with demo data) and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench lint asterisk-stop

install:
	./scripts/install-deps.sh
	$(BIN)/callcenter asterisk install

demo: install
	$(BIN)/callcenter demo

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q -ra

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
