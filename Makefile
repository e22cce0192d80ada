# Two entry points for a fresh machine: `make demo` (the main job on the built-in model) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# The exact torch build: the CPU wheel. Named on every install so that no dependency can replace it with a
# multi-GB CUDA build (the package itself states only the range it works with).
TORCH  := torch==2.13.0

.PHONY: install demo test test-slow lint clean cpp triton-env test-triton

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]' $(TORCH)
	touch $(STAMP)

install: $(STAMP)

# The Triton server's own environment: nvidia-pytriton 0.7.0 bundles tritonserver 2.51 with the Python backend
# and pins numpy<2, so it cannot share .venv. The Python-backend models import this project and run it on ONNX
# Runtime, so the project (editable) and onnxruntime go in too. First run about 1 min, then a no-op.
TRITON_VENV  := .venv-triton
TRITON_STAMP := $(TRITON_VENV)/.installed-stamp

$(TRITON_STAMP): pyproject.toml
	$(PYTHON) -m venv $(TRITON_VENV)
	echo '*' > $(TRITON_VENV)/.gitignore
	$(TRITON_VENV)/bin/python -m pip install -q torch==2.13.0
	$(TRITON_VENV)/bin/python -m pip install -q nvidia-pytriton==0.7.0 'numpy<2' onnxruntime onnx -e .
	touch $(TRITON_STAMP)

triton-env: $(TRITON_STAMP)

demo: install
	$(VENV)/bin/hrm-export build --out engines/default --verify-profile latency

# Everything a fresh machine can check: the architecture contract (seconds), the C++ build, the default suite,
# then the real Triton server (its own environment).
test: install triton-env
	$(VENV)/bin/lint-imports
	@if command -v c++ >/dev/null && command -v cmake >/dev/null; then $(MAKE) --no-print-directory cpp; \
	else echo "make test: no C++ compiler or CMake, the C++ tests will skip"; fi
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m triton tests/triton_serving

# The real-server suite alone: tritonserver on 127.0.0.1, HTTP, gRPC, streaming, bad requests, a bounded load.
test-triton: install triton-env
	$(PY) -m pytest -q -m triton tests/triton_serving

test-slow: install
	$(PY) -m pytest -q -m slow

# The C++ runtime (docs/cpp.md): fetches its dependencies once into cpp/third_party, builds into cpp/build.
cpp: install
	cpp/build.sh release $(PY)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(TRITON_VENV) engines/*/ .pytest_cache .import_linter_cache cpp/build cpp/build-asan cpp/third_party
