# percept: `make demo` (the main job) and `make test`. Each creates .venv on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-slow install eval bench clean

install: $(STAMP)

# torch==2.14.1 / torchvision==0.29.1 come from this machine's local wheel store (see README);
# everything else from PyPI. Re-runs when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/percept demo -o out/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

eval: $(STAMP)
	$(BIN)/python scripts/eval_style.py
	$(BIN)/python scripts/eval_inversion.py
	$(BIN)/python scripts/eval_int8.py

bench: $(STAMP)
	$(BIN)/python scripts/bench_train.py
	$(BIN)/python scripts/bench_inference.py
	$(BIN)/python scripts/bench_deploy.py

clean:
	rm -rf out runs .pytest_cache
