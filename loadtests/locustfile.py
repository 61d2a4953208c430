"""Locust load test: realistic traffic on both endpoints, with pass/fail thresholds.

    make loadtest HOST=http://127.0.0.1:8080 USERS=20 RUN_TIME=2m
    locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8080 -u 20 -r 5 -t 2m \
        --max-fail-ratio 0.01 --max-p95-ms 1000

Each user is a client that sends, with a short pause between requests:
- single images as raw bodies, in several sizes and formats (CIFAR-10 test JPEGs when the shared
  datasets are there, see loadtests/payloads.py), and multipart batches of 2 to 8 images;
- movie reviews and tweets, one at a time to their own model, and `texts` batches of 4 to 16;
- a small share (about 3 %) of bad requests, each of which must get its own 4xx: those count as
  successes when they do, and as failures otherwise.

A good request passes when it gets 200 and one result per input. The run exits non-zero when the
failure ratio (intended 4xx excluded, as they are successes) passes --max-fail-ratio, or the p95
latency of all requests passes --max-p95-ms (both also read LOCUST_MAX_FAIL_RATIO and
LOCUST_MAX_P95_MS). The model names come from GET /models, so any set of models works.
"""

from __future__ import annotations

import json
import logging
import random
import urllib.request
import uuid
from dataclasses import dataclass, field

from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

from loadtests import payloads

log = logging.getLogger("loadtest")

IMAGES = payloads.images()
REVIEWS = payloads.reviews()
TWEETS = payloads.tweets()
TOO_LARGE = b"\xff" * (10 * 1024 * 1024 + 1)  # one byte over the default 10 MiB limit


@dataclass
class Catalog:
    """What the service under test serves, read from GET /models at the start of the test."""

    image_model: str | None = None
    review_model: str | None = None
    tweet_model: str | None = None
    text_models: list[str] = field(default_factory=list)


catalog = Catalog()


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    group = parser.add_argument_group("pass/fail thresholds (loadtests/locustfile.py)")
    group.add_argument("--max-fail-ratio", type=float, default=0.01, env_var="LOCUST_MAX_FAIL_RATIO",
                       help="largest share of failed requests (intended 4xx are not failures); default 0.01")
    group.add_argument("--max-p95-ms", type=float, default=1000.0, env_var="LOCUST_MAX_P95_MS",
                       help="largest p95 latency over all requests, in ms; default 1000")
    group.add_argument("--api-key", default="", env_var="LOCUST_API_KEY",
                       help="sent as X-API-Key when the service requires keys")


def _headers(environment, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = dict(extra or {})
    if environment.parsed_options and environment.parsed_options.api_key:
        headers["X-API-Key"] = environment.parsed_options.api_key
    return headers


@events.test_start.add_listener
def _discover_models(environment, **_kwargs) -> None:
    request = urllib.request.Request(f"{environment.host.rstrip('/')}/models", headers=_headers(environment))
    with urllib.request.urlopen(request, timeout=30) as response:
        models = json.load(response)["models"]
    images = [m for m in models if m["task"] == "image-classification"]
    texts = [m for m in models if m["task"] == "text-classification"]
    catalog.image_model = next((m["name"] for m in images if m["default"]), images[0]["name"] if images else None)
    catalog.text_models = [m["name"] for m in texts]
    # By name when the usual models are there; else whatever text models there are.
    catalog.review_model = next((n for n in catalog.text_models if "imdb" in n), None) or next(
        (m["name"] for m in texts if m["default"]), None)
    catalog.tweet_model = next((n for n in catalog.text_models if "tweet" in n), catalog.review_model)
    log.info("models under test: %s", catalog)


@events.quitting.add_listener
def _apply_thresholds(environment, **_kwargs) -> None:
    total = environment.stats.total
    options = environment.parsed_options
    p95 = total.get_response_time_percentile(0.95) if total.num_requests else None
    problems = []
    if total.num_requests == 0:
        problems.append("no request was made")
    if total.fail_ratio > options.max_fail_ratio:
        problems.append(f"failure ratio {total.fail_ratio:.4f} > {options.max_fail_ratio}")
    if p95 is not None and p95 > options.max_p95_ms:
        problems.append(f"p95 {p95:.0f} ms > {options.max_p95_ms:.0f} ms")
    summary = (f"{total.num_requests} requests, {total.num_failures} failed ({total.fail_ratio:.2%}), "
               f"p95 {p95 if p95 is not None else '-'} ms")
    if problems:
        log.error("FAIL: %s (%s)", "; ".join(problems), summary)
        environment.process_exit_code = 1
    else:
        log.info("PASS: %s (thresholds: failures <= %s, p95 <= %s ms)", summary, options.max_fail_ratio,
                 options.max_p95_ms)
        environment.process_exit_code = 0


def _multipart(images: list[payloads.ImageBody]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    chunks = []
    for image in images:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{image.name}"\r\n'
            f"Content-Type: {image.content_type}\r\n\r\n".encode()
        )
        chunks.append(image.data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


class ServiceUser(FastHttpUser):
    """A client of the service: mostly good requests on both endpoints, a few bad ones."""

    wait_time = between(0.1, 0.5)
    # A request the service has not answered by then is a failure (the service's own limit is 10 s).
    network_timeout = 30.0
    connection_timeout = 10.0

    def _check_answer(self, response, expected_results: int) -> None:
        if response.status_code != 200:
            response.failure(f"status {response.status_code}: {response.text[:200] if response.text else ''}")
            return
        try:
            results = response.json()["results"]
        except (ValueError, KeyError, TypeError):
            response.failure("the answer is not the expected JSON")
            return
        if len(results) != expected_results:
            response.failure(f"{len(results)} results for {expected_results} inputs")
        else:
            response.success()

    def _post(self, path: str, name: str, body: bytes, content_type: str, expected_results: int) -> None:
        # FastHttpSession sends bytes as they are, though its annotation only names str and dict.
        with self.client.post(path, data=body, name=name, catch_response=True,  # type: ignore[arg-type]
                              headers=_headers(self.environment, {"Content-Type": content_type})) as response:
            self._check_answer(response, expected_results)

    def _sentiment(self, name: str, payload: dict, expected_results: int) -> None:
        self._post("/sentiment", name, json.dumps(payload).encode(), "application/json", expected_results)

    @task(30)
    def classify_one_image(self) -> None:
        if catalog.image_model is None:
            return
        image = random.choice(IMAGES)
        self._post(f"/classify-image?model={catalog.image_model}", "POST /classify-image (1 image, raw)",
                   image.data, image.content_type, 1)

    @task(8)
    def classify_image_batch(self) -> None:
        if catalog.image_model is None:
            return
        chosen = random.sample(IMAGES, random.randint(2, 8))
        body, content_type = _multipart(chosen)
        self._post(f"/classify-image?model={catalog.image_model}", "POST /classify-image (2-8 images, multipart)",
                   body, content_type, len(chosen))

    @task(27)
    def review_sentiment(self) -> None:
        if catalog.review_model is None:
            return
        payload = {"text": random.choice(REVIEWS), "model": catalog.review_model}
        self._sentiment("POST /sentiment (1 review)", payload, 1)

    @task(20)
    def tweet_sentiment(self) -> None:
        if catalog.tweet_model is None:
            return
        payload = {"text": random.choice(TWEETS), "model": catalog.tweet_model}
        self._sentiment("POST /sentiment (1 tweet)", payload, 1)

    @task(12)
    def sentiment_batch(self) -> None:
        if not catalog.text_models:
            return
        model = random.choice(catalog.text_models)
        texts = random.sample(TWEETS if model == catalog.tweet_model else REVIEWS, random.randint(4, 16))
        self._sentiment("POST /sentiment (4-16 texts)", {"texts": texts, "model": model}, len(texts))

    @task(3)
    def bad_request(self) -> None:
        """One of the ways clients get it wrong; each must get its own 4xx, never a 5xx or a 200."""
        kind, method, path, body, content_type, expected = random.choice(BAD_REQUESTS)
        with self.client.request(method, path, data=body, name=f"bad request: {kind}",  # type: ignore[arg-type]
                                 catch_response=True,
                                 headers=_headers(self.environment, {"Content-Type": content_type})) as response:
            if response.status_code == expected:
                response.success()
            else:
                response.failure(f"expected {expected}, got {response.status_code}")


# (name, method, path, body, content type, the status it must get)
BAD_REQUESTS = [
    ("unsupported media type", "POST", "/classify-image", b"II*\x00", "image/tiff", 415),
    ("not an image", "POST", "/classify-image", b"this is not a PNG", "image/png", 400),
    ("truncated JPEG", "POST", "/classify-image", IMAGES[0].data[: len(IMAGES[0].data) // 2], "image/jpeg", 400),
    ("not JSON", "POST", "/sentiment", b"{'text': 'single quotes'", "application/json", 400),
    ("empty texts", "POST", "/sentiment", b'{"texts": []}', "application/json", 422),
    ("unknown model", "POST", "/sentiment", b'{"text": "fine", "model": "no-such-model"}', "application/json", 404),
    ("body over 10 MiB", "POST", "/classify-image", TOO_LARGE, "image/jpeg", 413),
]
