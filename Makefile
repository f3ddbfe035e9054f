# Fresh-machine entry points: `make demo` and `make test` create their own virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export COLLABZONE_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install system-deps demo test lint typecheck check clean

$(BIN)/collabzone: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps pycanon==1.3.6
	touch $(BIN)/collabzone

install: $(BIN)/collabzone

demo: install
	$(BIN)/collabzone demo

# The console's browser test drives Debian's Chromium (Playwright cannot download browsers here).
# The PKCS#11 key provider is tested against a real SoftHSM2 token (Debian softhsm2): required.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || \
	  echo "chromium not installed: the browser test will be skipped"; }
	@command -v softhsm2-util >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2; }

test: install system-deps
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
