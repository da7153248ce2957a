# internvid: `make demo` and `make test` are all a fresh machine needs.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo
MODELS ?= lite

.PHONY: setup demo test test-slow lint format bench clean vllm

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (set PY=...)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: nothing later may pull another build of it
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,query]'
	# the OCR of the text_overlay score, without the GUI opencv it asks for (see pyproject.toml)
	$(BIN)/pip install -q --no-deps rapidocr-onnxruntime==1.4.4
	$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

demo: setup
	$(BIN)/internvid demo-videos $(DEMO)/videos
	$(BIN)/internvid run $(DEMO)/videos --out $(DEMO)/out --videos-per-shard 2 --overwrite \
		--models $(MODELS)
	$(BIN)/internvid report $(DEMO)/out

# test processes (pytest-xdist); a module's tests stay in one process, so its fixtures run once
TEST_WORKERS ?= 2

test: setup
	$(BIN)/python -m pytest -m "not slow" -q -n $(TEST_WORKERS) --dist loadscope

test-slow: setup
	$(BIN)/python -m pytest -m slow -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: setup
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/bench_metadata_stream.py
	$(BIN)/python benchmarks/bench_cut.py
	$(BIN)/python benchmarks/bench_pipeline.py

# the optional vLLM backend (a CUDA machine): refuses, rather than replaces, the pinned torch
vllm: setup
	$(BIN)/pip install -c constraints.txt -e '.[vllm]'

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache
