# Two commands for a new machine with Python 3.11+: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

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

test: $(VENV)/.test-deps  ## run the test suite
	$(BIN)/python -m pytest

lint: $(VENV)/.test-deps  ## ruff on everything, mypy on the packages
	$(BIN)/ruff check contract service training loadtests tests
	$(BIN)/mypy contract service loadtests

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
