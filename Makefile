# The two README commands: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SONGSEARCH_DATA ?=
RUN_DATA := $(if $(SONGSEARCH_DATA),--data $(SONGSEARCH_DATA),)

.PHONY: setup run test bench scale clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch, first: the CPU build unless an NVIDIA GPU answers (PyPI's default torch is a CUDA build of
# several GB), from PyTorch's CPU index as the Dockerfile does, else from the default index when that
# one cannot be reached. `make setup TORCH_INDEX=` leaves the choice to pip (the CUDA build on Linux).
TORCH_VERSION := $(shell sed -n 's/.*"torch==\([^"]*\)".*/\1/p' pyproject.toml)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(if $(shell nvidia-smi -L 2>/dev/null),,$(TORCH_CPU_INDEX))

# re-installs when the dependencies change
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(if $(TORCH_INDEX),$(BIN)/pip install --quiet --timeout 20 --retries 1 --index-url $(TORCH_INDEX) torch==$(TORCH_VERSION) \
	    || $(BIN)/pip install --quiet torch==$(TORCH_VERSION))
	$(BIN)/pip install --quiet -e '.[test,eval]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/ingest $(RUN_DATA)
	$(BIN)/search similar --id 2172 --limit 10

test: setup
	$(BIN)/python -m pytest

# regenerates docs/benchmarks.md (about 10 minutes on yes_complete; needs SONGSEARCH_DATA)
bench: setup
	$(BIN)/python benchmarks/bench.py $(RUN_DATA) | tee docs/benchmarks.md

# regenerates docs/scale.md, docs/scale.json and docs/img/scale.png: yes_complete grown 1x, 4x and 16x
# (benchmarks/grow.py), each ingested plain and with --quantization int8 (hours on 2 cores at 16x;
# SCALE_SIZES=1,4 for fewer, SCALE_ARGS="--project 16" to extrapolate, "--memory-limit 8" to run each
# ingest in an 8 GiB memory cgroup (root); results accumulate in
# docs/scale.json; needs SONGSEARCH_DATA)
SCALE_SIZES ?= 1,4,16
SCALE_ARGS ?=
scale: setup
	nice -n 10 $(BIN)/python benchmarks/scale.py $(RUN_DATA) --sizes $(SCALE_SIZES) $(SCALE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

# regenerates docs/quality.md and docs/img/*.png (a few minutes; set SONGSEARCH_DATA to a local copy)
.PHONY: eval
eval: setup
	nice -n 19 $(BIN)/ingest evaluate $(RUN_DATA) --report docs/quality.md --tuning docs/tuning.json

# re-tunes the default answer's Word2Vec/co-play fusion on the tuning split (seed 11) into docs/fusion_tuning.json
.PHONY: tune
tune: setup
	nice -n 19 $(BIN)/ingest tune $(RUN_DATA) --out docs/fusion_tuning.json
