"""Speed shims: the only code that reaches into a framework's internals, each for a measured gain.

Each module names the versions it was tested on (the lock file's, uv.lock) and when it can go.
pyproject.toml bounds each of these packages below its next minor release, so a new release is
taken on purpose (`make lock`), with this package's tests (tests/service/shims/), never by chance.

- `uvicorn_coalescing`: uvicorn's httptools protocol, writing each response in one write
  (docs/decisions/0001-coalescing-transport.md).
- `fastapi_lean_route`: a route class serving the inference routes without FastAPI's per-request
  machinery (docs/decisions/0002-lean-route.md).
- `prometheus_bulk_observe`: a histogram's observations for a whole batch in one update per
  bucket (docs/decisions/0008-bulk-histogram-observe.md).
- `tensorflow_call_options`: one version's model calls under oneDNN's bf16 rewrite while the
  process stays float32 (docs/decisions/0011-bf16-per-version-call-options.md).
"""
