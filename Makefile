# The two README commands: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SONGSEARCH_DATA ?=
RUN_DATA := $(if $(SONGSEARCH_DATA),--data $(SONGSEARCH_DATA),)

.PHONY: setup run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# re-installs when the dependencies change
$(VENV)/.installed: pyproject.toml | $(BIN)/python
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

clean:
	rm -rf $(VENV) build *.egg-info

# regenerates docs/quality.md and docs/img/*.png (a few minutes; set SONGSEARCH_DATA to a local copy)
.PHONY: eval
eval: setup
	nice -n 19 $(BIN)/ingest evaluate $(RUN_DATA) --report docs/quality.md
