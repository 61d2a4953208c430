"""Optional API keys: required on the model routes when set, never on probes, never logged."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from loadtests.server import running_service
from service.app import create_app
from service.settings import Settings

KEY, OTHER_KEY = "k3y-0123456789abcdef", "second-key-0123456789"


@pytest.fixture(scope="module")
def keyed_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(api_keys=f"{KEY}, {OTHER_KEY}"))) as client:
        yield client


@pytest.mark.parametrize(("method", "url"), [("post", "/sentiment"), ("post", "/classify-image"), ("get", "/models"),
                                             ("get", "/models/tiny-text"), ("get", "/v2/models/tiny-text"),
                                             ("post", "/v2/models/tiny-text/infer")])
def test_model_routes_need_a_key(keyed_client: TestClient, method: str, url: str) -> None:
    response = keyed_client.request(method, url, json={"text": "good"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert "API key is required" in (error if isinstance(error, str) else error["message"])


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY},
                                     {"Authorization": f"Bearer {OTHER_KEY}"}])
def test_a_right_key_in_either_header_is_accepted(keyed_client: TestClient, headers: dict[str, str]) -> None:
    assert keyed_client.post("/sentiment", json={"text": "good"}, headers=headers).status_code == 200


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer wrong-key-0123456789"}, {"X-API-Key": KEY[:-1]},
                                     {"Authorization": f"Basic {KEY}"}, {"X-API-Key": ""},
                                     {"X-API-Key": KEY, "Authorization": "Bearer wrong-key-0123456789"}])
def test_a_wrong_key_is_a_401(keyed_client: TestClient, headers: dict[str, str]) -> None:
    response = keyed_client.post("/sentiment", json={"text": "good"}, headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("url", ["/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"])
def test_probes_stay_open(keyed_client: TestClient, url: str) -> None:
    assert keyed_client.get(url).status_code == 200


def _requests_with_keys(post) -> list[int]:
    """Right and wrong keys in both headers, on answers that succeed and on ones that fail (and log)."""
    statuses = []
    for headers in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {OTHER_KEY}"},
                    {"X-API-Key": WRONG_KEY}, {"Authorization": f"Bearer {WRONG_KEY}"}):
        for payload in ({"text": "good"}, {"text": "boom"}, {"text": 7}):
            statuses.append(post("/sentiment", json=payload, headers=headers).status_code)
    return statuses


WRONG_KEY = "wrong-key-0123456789"


def test_keys_never_reach_the_logs(keyed_client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        statuses = _requests_with_keys(keyed_client.post)
    assert set(statuses) == {200, 500, 422, 401}
    assert caplog.records
    for key in (KEY, OTHER_KEY, WRONG_KEY):
        assert key not in caplog.text


@pytest.mark.live
def test_a_bearer_key_never_reaches_a_real_servers_log_even_at_debug_level(
    artifacts_dir: Path, tmp_path: Path
) -> None:
    log_path = tmp_path / "service.log"
    settings = {"default_sentiment_model": "tiny-text", "api_keys": f"{KEY},{OTHER_KEY}", "log_level": "debug"}
    with running_service(artifacts_dir, log_path, **settings) as service, \
            httpx.Client(base_url=service.base_url, timeout=30) as http:
        statuses = _requests_with_keys(http.post)
    assert set(statuses) == {200, 500, 422, 401}
    log = log_path.read_text()
    assert "status=401" in log and "status=500" in log  # the requests were logged
    for key in (KEY, OTHER_KEY, WRONG_KEY):
        assert key not in log


def test_keys_are_off_by_default(client: TestClient) -> None:
    assert client.post("/sentiment", json={"text": "good"}).status_code == 200


def test_short_keys_are_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(api_keys="short")


def test_settings_do_not_show_keys() -> None:
    assert KEY not in repr(Settings(api_keys=KEY))
