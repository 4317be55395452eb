# model_bundle: `make serve` serves the bundle on :3000, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000
export BENTOML_DO_NOT_TRACK := true

.PHONY: serve test fast lint models bento verify-bento container bench venv serving-venv clean \
	openapi client-py client-ts

# uv installs the pinned sets (its own version pinned in constraints.txt, installed by pip):
# about 10 s for the serving set where pip takes about 100 s. Like pip, it takes local wheels
# from PIP_FIND_LINKS when the machine sets it (a local CPU build of torch, say). It compiles
# the bytecode as it installs: where PYTHONDONTWRITEBYTECODE is set (as on our CI machines)
# Python would otherwise compile torch, pandas and bentoml from source in every process it
# starts, about 4 s of CPU each (and a server starts five).
UV := $(BIN)/uv
INSTALL := $(if $(PIP_FIND_LINKS),UV_FIND_LINKS=$(PIP_FIND_LINKS)) \
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt

$(UV): constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv -c constraints.txt
	touch $@

# Two stamps: serving and the default training need requirements.txt only; tests, lint,
# benchmarks and the Ray engine need the development set on top. Each is (re)installed when
# it is missing or one of its requirement files changed.
$(BIN)/.serving: $(UV) requirements.txt constraints.txt
	$(INSTALL) -r requirements.txt
	touch $@

$(BIN)/.installed: $(BIN)/.serving requirements-dev.txt requirements-batch.txt requirements-mlflow.txt
	$(INSTALL) -r requirements-dev.txt
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

## Build the container image model_bundle:$(TORCH_BACKEND) from the Bento with `bentoml containerize`
## on Docker (when its daemon answers) or Podman. TORCH_BACKEND=cu128 (a uv --torch-backend value)
## for CUDA; BASE_IMAGE, TORCH_WHEELS, HOST_CA_BUNDLE: see docs/DEPLOYMENT.md.
TORCH_BACKEND ?= cpu
container: bento
	$(BIN)/python -m scripts.container.build --torch-backend $(TORCH_BACKEND)

## Benchmark the bundle against a plain FastAPI server; writes docs/PERFORMANCE.md.
## Uses wrk when installed (Debian: apt-get install wrk), else a Python load generator.
## Ends with the table of every performance goal as its benchmark last measured it
## (docs/PERFORMANCE-goals.md).
bench: venv models
	$(BIN)/python -m scripts.benchmarks.bench --write
	$(BIN)/python -m scripts.benchmarks.goals --write

## The OpenAPI document (what GET /docs.json serves) and clients generated from it, into
## $(CLIENTS)/ (gitignored). By default the document is written from the code (no server
## needed); OPENAPI=http://host:3000/docs.json (or a file) takes that one instead.
CLIENTS ?= clients
OPENAPI ?=
DOCUMENT = $(or $(OPENAPI),$(CLIENTS)/openapi.json)
# A file by its absolute path: openapi-ts reads "dir/file.json" as a registry's "org/project".
SOURCE = $(if $(findstring ://,$(DOCUMENT)),$(DOCUMENT),$(abspath $(DOCUMENT)))
WRITTEN = $(if $(OPENAPI),,openapi)

openapi: venv
	@mkdir -p $(CLIENTS)
	$(BIN)/python -c "import json, service; \
		print(json.dumps(service.ModelBundle.openapi_spec.asdict(), indent=2))" \
		> $(CLIENTS)/openapi.json

## Python: an installable project in $(CLIENTS)/python (openapi-python-client; it formats
## the code with ruff, hence the venv on PATH).
client-py: venv $(WRITTEN)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/openapi-python-client generate --overwrite \
		$(if $(findstring ://,$(SOURCE)),--url,--path) $(SOURCE) --output-path $(CLIENTS)/python

## TypeScript: a fetch-based SDK, its types and zod schemas in $(CLIENTS)/typescript
## (@hey-api/openapi-ts, pinned in package-lock.json; options in openapi-ts.config.mjs).
client-ts: node_modules/.package-lock.json $(WRITTEN)
	OPENAPI=$(SOURCE) CLIENT_TS=$(abspath $(CLIENTS))/typescript node_modules/.bin/openapi-ts

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## The whole suite: lint, the fast in-process tests, then the end-to-end tests against real
## servers. The fast ones run in TEST_PROCESSES processes side by side (pytest-xdist; two for
## a 2-core machine, more only add contention); the end-to-end ones one at a time, since
## their servers, load tests and timings would compete for the same cores.
TEST_PROCESSES ?= 2
FAST_TESTS := $(BIN)/python -m pytest -m "not e2e" -n $(TEST_PROCESSES) --dist worksteal
# Tests write bytecode even where the machine says not to (PYTHONDONTWRITEBYTECODE, as on our
# CI machines): without it every pytest process rewrites the asserts of ~300 modules (the
# tests and the plugins' own: schemathesis, hypothesis) and every server it starts compiles
# this project's modules from source again. The caches are __pycache__ folders git ignores.
test fast: export PYTHONDONTWRITEBYTECODE :=

test: lint
	$(FAST_TESTS)
	$(BIN)/python -m pytest -m e2e

## The fast in-process tests only (no server process).
fast: venv
	$(FAST_TESTS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
