# Everything starts from nothing: `make test` and `make demo` create .venv and install what they need.
# torch is installed first, pinned to the CPU wheel that lies on disk here, so that resolving the
# package's open `torch>=2.6` never pulls a multi-GB CUDA build. A venv that already has torch
# (e.g. a GPU user's CUDA build) keeps it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.goodhartlab-installed
TORCH_SPEC ?= torch==2.13.0
WHEELS ?= /opt/wheels
DEMO_OUT ?= demo_out
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg

.PHONY: setup test lint format demo bench results clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(if $(wildcard $(WHEELS)),--find-links $(WHEELS)) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

format: $(STAMP)
	$(PY) -m ruff check --fix src tests benchmarks
	$(PY) -m ruff format src tests benchmarks

test: lint
	$(PY) -m pytest -x -p no:cacheprovider tests

# A second `make demo` resumes the first (finished stages are skipped; the summary is printed again).
demo: $(STAMP)
	$(VENV)/bin/goodhart demo --config toy --out $(DEMO_OUT) $(if $(wildcard $(DEMO_OUT)/config.yaml),--resume)

# Speed benchmarks (each prints a ratio against a baseline run in the same process). The results
# tables (benchmarks/*_table.py) are experiments of tens of minutes and are run by hand.
# ppo_vs_trl (last: its large shape takes minutes per iteration) needs the [bench] extra (TRL
# 1.0.0, installed here after torch); without it, it prints why it skipped. generate, ppo_step,
# rm_score, ppo_value_model (head vs separate value network, toy shape) and ppo_vs_trl (TRL, ours
# with a separate value network, ours with a value head) interleave their sides and print min,
# median and peak RSS.
BENCHMARKS := generate bon ppo_step envs rm_score ppo_value_model ppo_vs_trl
BENCH_STAMP := $(VENV)/.goodhartlab-bench-installed
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e ".[bench]" || echo "make bench: the [bench] extra did not install; ppo_vs_trl will skip"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@for b in $(BENCHMARKS); do echo "== benchmarks/$$b.py"; $(PY) benchmarks/$$b.py || exit 1; done

# Every results table in docs/, regenerated (hours on two cores; resumable: rerun to continue).
# docs/reproducibility.md says why the numbers are the same on any x86 machine.
RESULTS_OUT ?= runs/results
results: $(STAMP)
	$(PY) benchmarks/results.py --out $(RESULTS_OUT)

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
