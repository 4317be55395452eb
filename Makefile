# model_bundle: `make serve` serves the bundle on :3000, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000
export BENTOML_DO_NOT_TRACK := true

.PHONY: serve test lint models bento verify-bento container bench venv serving-venv clean

PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check

# Two stamps: serving and the default training need requirements.txt only; tests, lint,
# benchmarks and the Ray engine need the development set on top. Each is (re)installed when
# it is missing or one of its requirement files changed.
$(BIN)/.serving: requirements.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements.txt -c constraints.txt
	touch $@

$(BIN)/.installed: $(BIN)/.serving requirements-dev.txt requirements-batch.txt
	$(PIP_INSTALL) -r requirements-dev.txt -c constraints.txt
	touch $@

serving-venv: $(BIN)/.serving
venv: $(BIN)/.installed

## Train every default model missing from the model store ($BENTOML_HOME, default ~/bentoml).
models: serving-venv
	$(BIN)/python -m scripts.train.defaults

## Serve the bundle on http://localhost:$(PORT).
serve: models
	$(BIN)/bentoml serve service:ModelBundle --port $(PORT) --timeout-keep-alive 20

## Build the Bento (code, pinned requirements, the models each runner serves).
bento: models
	$(BIN)/bentoml build

## Prove the Bento is self-contained: export it, install its requirements into a fresh venv,
## import it into an empty BENTOML_HOME and serve it from an empty directory.
verify-bento: models
	$(BIN)/python -m scripts.bento.verify

## Build the container image model_bundle:$(TORCH_BACKEND) with `bentoml containerize` (needs a
## Docker engine). CPU torch by default; TORCH_BACKEND=cu130 (a uv --torch-backend value) for CUDA.
TORCH_BACKEND ?= cpu
container: bento
	@docker info > /dev/null 2>&1 || { echo "make container needs a running Docker engine" \
		"(docker info failed); make verify-bento checks the same Bento without one"; exit 1; }
	UV_TORCH_BACKEND=$(TORCH_BACKEND) $(BIN)/bentoml containerize model_bundle:latest \
		--image-tag model_bundle:$(TORCH_BACKEND)

## Benchmark the bundle against a plain FastAPI server; writes docs/PERFORMANCE.md.
## Uses wrk when installed (Debian: apt-get install wrk), else a Python load generator.
bench: venv models
	$(BIN)/python -m scripts.benchmarks.bench --write

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## The whole suite: lint, unit tests, and end-to-end tests against a real server.
test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
