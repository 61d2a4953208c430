# The service's production image: the service, its runtime dependencies and the committed models.
#
#   DOCKER_BUILDKIT=1 docker build -t tf-serving-service .
#   docker run --rm -p 8000:8000 tf-serving-service
#
# The dependencies come from uv.lock, the versions CI tested, each checked against its hash.
# Where the build needs an extra CA bundle (a TLS-inspecting proxy), hand it over as a BuildKit
# secret; it is mounted for the install step only and never lands in a layer:
#   ... --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt
# Models can be mounted instead of the baked-in ones:
#   docker run -v "$PWD/models:/models:ro" -e SERVICE_ARTIFACTS_DIR=/models ...
# Rollout policies go in a volume shared by every replica (docker-compose.yml):
#   docker run -v rollouts:/app/rollouts -e SERVICE_ROLLOUT_DIR=/app/rollouts ...

# Any Debian-based Python 3.11+ image with `python -m venv` works (the same base is used for both stages,
# so the virtual environment's interpreter links stay valid).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# Optional extras of pyproject.toml installed too (comma-separated); `otel` lets the image send traces, which
# stay off until OTEL_TRACES_EXPORTER is set; `openvino` is the image models' fastest runtime on a CPU with
# bf16 (docs/runtimes.md). EXTRAS= builds without them.
ARG EXTRAS=otel,openvino
# uv at the version the Makefile uses (UV_VERSION there); it stays in this stage.
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_DEFAULT_TIMEOUT=120 \
    UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_HTTP_TIMEOUT=120
# tini is copied into the final image: a real PID 1 that forwards SIGTERM and reaps children.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tini >/dev/null \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip-ca \
    set -eu; \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    python -m venv /opt/uv; \
    /opt/uv/bin/pip install -q "uv==${UV_VERSION}"
# The service's environment, without pip: nothing installs into it once it is built.
RUN python -m venv --without-pip /opt/venv
# Dependencies before code, so that a code change does not reinstall TensorFlow. Only the
# `[project] dependencies` and the EXTRAS: no training, test, load or dev extras.
COPY pyproject.toml uv.lock /src/
WORKDIR /src
RUN --mount=type=cache,target=/root/.cache/uv,sharing=locked \
    --mount=type=secret,id=pip-ca \
    set -eu; \
    if [ -s /run/secrets/pip-ca ]; then export SSL_CERT_FILE=/run/secrets/pip-ca; fi; \
    extras=$(echo "$EXTRAS" | tr ',' ' '); \
    # --locked: the build fails if uv.lock no longer matches pyproject.toml (run `make lock`).
    # TensorFlow declares libclang (a C/C++ compiler front end, ~60 MB) for its source tooling;
    # serving never loads it, so it is left out of the list.
    /opt/uv/bin/uv export -q --locked --format requirements-txt --no-emit-project --no-emit-package libclang \
      $(for extra in $extras; do printf -- '--extra %s ' "$extra"; done) -o /src/requirements.txt; \
    # Exactly the list, each file checked against the lock's hash; bytecode compiled as pip would.
    /opt/uv/bin/uv pip install -q --python /opt/venv/bin/python --no-deps --require-hashes --compile-bytecode \
      -r /src/requirements.txt; \
    # TensorFlow's C++ headers (~290 MB) are for compiling custom ops, not for running models.
    rm -rf /opt/venv/lib/python3*/site-packages/tensorflow/include

# The service's folder, /app, laid out in a stage of its own so that the final image takes it in one layer.
# (Each layer counts: on a storage driver that copies instead of layering, such as vfs, every layer holds a
# whole copy of the file system below it.)
FROM ${PYTHON_IMAGE} AS app
# The context holds only contract/, service/, artifacts/ (when models are committed), pyproject.toml and
# uv.lock (.dockerignore). Code and models belong to root and are read-only for the service's user.
COPY . /app
# The rollout policies (service.rollout) are the one folder the service's user (uid 10001, made below)
# writes: a rollout command and the replicas' automatic rollbacks. It is made here, owned by that user,
# because an empty named volume mounted over it takes this folder's owner; mounted anywhere else, a fresh
# volume would be root's and unwritable.
RUN rm /app/pyproject.toml /app/uv.lock && mkdir -p /app/artifacts \
 && install -d -o 10001 -g 10001 -m 0755 /app/rollouts

FROM ${PYTHON_IMAGE} AS runtime
COPY --from=build /usr/bin/tini /usr/bin/tini
# (chmod: some minimal bases, such as a debootstrap tree imported with `docker import`, ship `/` as 0700,
# which would lock the non-root user out of everything; on the official images it changes nothing.)
RUN useradd --user-group --uid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
 && chmod 0755 /
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# (A copy between stages keeps the files' owners.)
COPY --from=app /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    SERVICE_HOST=0.0.0.0 \
    SERVICE_PORT=8000 \
    SERVICE_ARTIFACTS_DIR=/app/artifacts
USER app
EXPOSE 8000
# Healthy = ready: every model loaded and warmed up (GET /readyz answers 200; 503 while loading or draining).
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('SERVICE_PORT', '8000'), timeout=4)"]
# SIGTERM -> tini -> uvicorn: readiness turns 503, in-flight and queued requests are answered
# (up to SERVICE_SHUTDOWN_GRACE_S), then the process exits. uvicorn re-raises the signal once it
# has drained, which reads as exit code 143; tini -e 143 reports that clean stop as 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "-e", "143", "--"]
CMD ["python", "-m", "service"]
