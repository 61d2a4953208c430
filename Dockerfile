# The service's production image: the service, its runtime dependencies and the committed models.
#
#   DOCKER_BUILDKIT=1 docker build -t tf-serving-service .
#   docker run --rm -p 8000:8000 tf-serving-service
#
# Where pip needs an extra CA bundle (a TLS-inspecting proxy), hand it over as a BuildKit
# secret; it is mounted for the pip step only and never lands in a layer:
#   ... --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt
# Models can be mounted instead of the baked-in ones:
#   docker run -v "$PWD/models:/models:ro" -e SERVICE_ARTIFACTS_DIR=/models ...

# Any Debian-based Python 3.11+ image with `python -m venv` works (the same base is used for both stages,
# so the virtual environment's interpreter links stay valid).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# Optional extras of pyproject.toml installed too (comma-separated); `otel` lets the image send traces, which
# stay off until OTEL_TRACES_EXPORTER is set. EXTRAS= builds without them.
ARG EXTRAS=otel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_DEFAULT_TIMEOUT=120
# tini is copied into the final image: a real PID 1 that forwards SIGTERM and reaps children.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tini >/dev/null \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
# Dependencies before code, so that a code change does not reinstall TensorFlow. Only the
# `[project] dependencies` of pyproject.toml: no training, test, load or dev extras.
COPY pyproject.toml /src/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip-ca \
    set -eu; \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    python -c "import os, tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; \
extras = [e.strip() for e in os.environ.get('EXTRAS', '').split(',') if e.strip()]; \
print('\n'.join(p['dependencies'] + [r for e in extras for r in p['optional-dependencies'][e]]))" \
      > /src/requirements.txt; \
    /opt/venv/bin/pip install -q -r /src/requirements.txt; \
    # TensorFlow declares libclang (a C/C++ compiler front end, ~60 MB) for its source tooling; serving never loads it.
    /opt/venv/bin/pip uninstall -q -y libclang; \
    # TensorFlow's C++ headers (~290 MB) are for compiling custom ops, not for running models.
    rm -rf /opt/venv/lib/python3*/site-packages/tensorflow/include; \
    /opt/venv/bin/pip uninstall -q -y pip
# The context holds only contract/, service/, artifacts/ (when models are committed) and pyproject.toml (.dockerignore).
COPY . /src
RUN mkdir -p /src/artifacts

FROM ${PYTHON_IMAGE} AS runtime
COPY --from=build /usr/bin/tini /usr/bin/tini
# (chmod: some minimal bases, such as a debootstrap tree imported with `docker import`, ship `/` as 0700,
# which would lock the non-root user out of everything; on the official images it changes nothing.)
RUN useradd --user-group --uid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
 && chmod 0755 /
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Code and models belong to root and are read-only for the service's user.
COPY --from=build /src/contract /app/contract
COPY --from=build /src/service /app/service
COPY --from=build /src/artifacts /app/artifacts
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
