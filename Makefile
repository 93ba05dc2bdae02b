# Two commands on a fresh machine:
#   make run   set up (.venv, apt packages) and run the default pipeline on embedded synthetic data
#   make test  set up and run the test suite
#   make review  the review page for the newest digitize run (after make run)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages: tesseract for the optional offline engine, handwriting fonts for synthetic forms,
# chromium + chromium-driver for the review page's browser test (Selenium drives them; no download)
APT_PACKAGES ?= tesseract-ocr tesseract-ocr-eng fonts-dkg-handwriting fonts-femkeklaver fonts-breip fonts-rufscript \
	chromium chromium-driver
TEST_CMD ?= $(BIN)/pytest -q --timeout 600
# PyTorch's CPU-only wheel index. Set it on a machine without a GPU (or without a local CPU
# torch wheel): otherwise pip resolves torch from PyPI to the CUDA build plus ~16 nvidia-* wheels
# (several GB). e.g. make run TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?=
TORCH_SPEC ?= $(shell grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')
REPORT = ls -d data/08_reporting/metrics.md/*/metrics.md 2>/dev/null | sort | tail -1

.PHONY: setup apt run digitize-demo order-card review test lint viz viz-build docs docs-serve clean-venv benchmark-reader

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@if [ -n "$(TORCH_INDEX_URL)" ]; then echo "installing $(TORCH_SPEC) from $(TORCH_INDEX_URL)"; \
	  $(BIN)/pip install -q --index-url "$(TORCH_INDEX_URL)" "$(TORCH_SPEC)"; fi
	$(BIN)/pip install -q -e ".[test]"
	@$(MAKE) --no-print-directory apt
	@touch $(STAMP)

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "apt packages present: $(APT_PACKAGES)"; \
	elif [ "$$(id -u)" = 0 ]; then echo "installing apt packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	  || echo "WARNING: apt-get install$$missing failed; the tesseract engine and extra fonts are skipped"; \
	elif sudo -n true 2>/dev/null; then echo "installing apt packages with sudo:$$missing"; \
	  (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	  || echo "WARNING: sudo apt-get install$$missing failed; the tesseract engine and extra fonts are skipped"; \
	else echo "NOTE: not root and no sudo: not installing$$missing."; \
	  echo "      Ask an admin for 'apt-get install$$missing' to enable the tesseract engine and extra fonts;"; \
	  echo "      everything else works without them."; fi

run: setup
	@$(BIN)/kedro run; rc=$$?; report=$$($(REPORT)); \
	if [ -n "$$report" ]; then echo "Report: $$report (plots linked inside; log: info.log)"; fi; \
	[ $$rc -eq 0 ] || exit $$rc; $(MAKE) --no-print-directory digitize-demo

# digitize a few embedded synthetic full pages (registration + crop, the offline vote)
DEMO_DIR ?= data/01_raw/digitize_demo
digitize-demo: setup
	@$(BIN)/python -m handwriting_pipeline.digitize.demo $(DEMO_DIR) 4
	@$(BIN)/kedro run --pipeline digitize --params "digitize.input_dir=$(DEMO_DIR)" && \
	echo "Digitized JSON: data/08_reporting/digitize/latest/forms.jsonl (also forms.csv, review_queue.csv, summary.json; run folder: $$(readlink -f data/08_reporting/digitize/latest))" && \
	echo "Review the doubtful fields in your browser: make review   (then open http://127.0.0.1:$(REVIEW_PORT)/)"

# the example form end to end (docs/forms.md): synthetic order cards -> field reader -> report ->
# digitized pages; everything under data/forms/order_card/
ORDER_CARD_DIR ?= data/01_raw/order_card_demo
order-card: setup
	@$(BIN)/kedro run --params form=order_card
	@$(BIN)/python -m handwriting_pipeline.digitize.demo $(ORDER_CARD_DIR) 4 --form order_card
	@$(BIN)/kedro run --pipeline digitize --params "form=order_card,digitize.input_dir=$(ORDER_CARD_DIR)" && \
	echo "Report: data/forms/order_card/08_reporting/metrics.md; digitized: data/forms/order_card/08_reporting/digitize/latest"

# the review page for the newest digitize run (127.0.0.1 only; decisions in its corrections.sqlite)
REVIEW_PORT ?= 8765
REVIEW_RUN ?= data/08_reporting/digitize/latest
review: setup
	@test -e $(REVIEW_RUN)/forms.jsonl || { echo "no digitize run at $(REVIEW_RUN): make digitize-demo (or kedro run --pipeline digitize ...) first"; exit 1; }
	$(BIN)/python -m handwriting_pipeline.review $(REVIEW_RUN) --port $(REVIEW_PORT)

test: setup
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false $(TEST_CMD)

lint: setup
	$(BIN)/ruff check src tests benchmarks docs/hooks.py docs/griffe_sphinx_roles.py

viz: setup
	$(BIN)/kedro viz run --host 127.0.0.1 --no-browser

viz-build: setup
	$(BIN)/kedro viz build

# the documentation site (mkdocs.yml, docs/) into build/site; offline; fails on any warning
docs: setup
	PYTHONPATH=$(CURDIR)/src $(BIN)/mkdocs build --strict

DOCS_PORT ?= 8000
docs-serve: setup
	PYTHONPATH=$(CURDIR)/src $(BIN)/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

clean-venv:
	rm -rf $(VENV)

# The field reader's tables from a fresh clone with ../shared beside it (not a test; hours on
# 2 idle cores): the field reader, its style layer, padding, reading speed. Every step writes its
# own results file under benchmarks/results/.
BENCH := $(BIN)/python benchmarks
READER := data/06_models/benchmark_fieldreader
STYLED := data/06_models/fieldreader_style
benchmark-reader: setup
	$(BENCH)/fieldreader/fieldreader_benchmark.py train --epochs 12 --max-minutes 75 --out $(READER)
	$(BENCH)/fieldreader/style_benchmark.py --model $(READER) --out $(STYLED)
	$(BENCH)/fieldreader/padding_benchmark.py --model $(STYLED)
	$(BENCH)/digitize/digitize_benchmark.py --modes fieldreader,cascade,crops --pages 300 --model $(STYLED) \
	  --out benchmarks/results/digitize_benchmark_style_idle.json
