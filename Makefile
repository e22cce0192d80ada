# Two entry points for a fresh machine: `make demo` (the main job on the built-in model) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-slow lint clean triton-env test-triton

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, exact version, so nothing later can pull a CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
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

test: install
	$(PY) -m pytest -q

# The real-server suite: tritonserver on 127.0.0.1, HTTP, gRPC, streaming, bad requests, a bounded load.
test-triton: install triton-env
	$(PY) -m pytest -q -m triton tests/triton_serving

test-slow: install
	$(PY) -m pytest -q -m slow

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(TRITON_VENV) engines/*/ .pytest_cache
