"""POST /sentiment over the app, on the tiny good/bad counting model."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.api.test_classify_image import assert_error
from tests.tiny_models import expected_positive

URL = "/sentiment"


def test_one_text_gets_its_label_and_every_probability(client: TestClient) -> None:
    response = client.post(URL, json={"text": "good good movie"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"]) == ("tiny-text", 2)  # the newest version is served
    [result] = body["results"]
    assert result["label"] == "positive"
    assert set(result["probabilities"]) == {"negative", "positive"}
    assert result["probabilities"]["positive"] == pytest.approx(expected_positive("good good movie", 2), abs=1e-5)


def test_many_texts_are_answered_in_input_order(client: TestClient) -> None:
    texts = ["bad bad bad", "good", "", "GOOD good good", "bad"]
    results = client.post(URL, json={"texts": texts}).json()["results"]
    assert [r["label"] for r in results] == ["negative", "positive", "negative", "positive", "negative"]
    positives = [r["probabilities"]["positive"] for r in results]
    assert positives[3] > positives[1] > positives[2] > positives[4] > positives[0]


def test_the_model_can_be_named_in_the_body(client: TestClient) -> None:
    assert client.post(URL, json={"text": "good", "model": "tiny-text"}).status_code == 200


def test_a_long_text_is_truncated_by_the_model_not_refused(client: TestClient) -> None:
    assert client.post(URL, json={"text": "good " * 3000}).status_code == 200


def test_unicode_text_is_fine(client: TestClient) -> None:
    assert client.post(URL, json={"text": "très good 😀 ✓ 日本語"}).json()["results"][0]["label"] == "positive"


def test_an_unknown_model_is_a_404(client: TestClient) -> None:
    assert_error(client.post(URL, json={"text": "x", "model": "nope"}), 404, "not_found")


def test_an_image_model_is_not_a_sentiment_model(client: TestClient) -> None:
    assert_error(client.post(URL, json={"text": "x", "model": "tiny-image"}), 404, "not_found")


def test_a_failing_model_call_is_a_500_logged_as_an_error_and_the_next_request_is_served(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="service.errors"):
        failed = client.post(URL, json={"text": "boom"})  # the tiny model's call fails on this text
        assert_error(client.post(URL, json={"text": "x", "model": "nope"}), 404, "not_found")
    error = assert_error(failed, 500, "inference_failed")
    # Only the failure is on the error log, with its code and message; a client's mistake is not.
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "service.errors"] == \
        [(logging.ERROR, f"inference_failed: {error['message']}")]
    assert client.post(URL, json={"text": "good"}).status_code == 200


def test_an_empty_body_is_a_400(client: TestClient) -> None:
    response = client.post(URL, content=b"", headers={"Content-Type": "application/json"})
    error = assert_error(response, 400, "bad_request")
    assert error["message"] == "the body is empty" and error["accepted"].startswith('a JSON object {"text": "..."}')


@pytest.mark.parametrize("body", [b"{not json", b'{"text": "unterminated', b"\xff\xfe\x00garbage"])
def test_a_body_that_is_not_json_is_a_400(client: TestClient, body: bytes) -> None:
    response = client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json")


def test_a_json_syntax_error_is_a_400_that_says_what_is_accepted(client: TestClient) -> None:
    response = client.post(URL, content=b"{not json", headers={"Content-Type": "application/json"})
    error = assert_error(response, 400, "invalid_json")
    assert (error["message"], error["accepted"]) == ("the body is not valid JSON", "a UTF-8 JSON object")


def test_invalid_utf8_inside_a_json_string_is_a_400_that_asks_for_utf8(client: TestClient) -> None:
    response = client.post(URL, content=b'{"text": "caf\xe9"}', headers={"Content-Type": "application/json"})
    error = assert_error(response, 400, "invalid_json")
    assert (error["message"], error["accepted"]) == ("the body is not valid JSON", "a UTF-8 JSON object")


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", 'application/json;charset="UTF-8"']
)
def test_json_with_parameters_or_any_case_is_json(client: TestClient, content_type: str) -> None:
    response = client.post(URL, content=b'{"text": "good"}', headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "image/png", None])
def test_a_body_that_is_not_declared_json_is_a_415(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(URL, content=b'{"text": "good"}', headers=headers)
    error = assert_error(response, 415, "unsupported_media_type")
    assert error["accepted"] == "application/json"
    assert error["message"] == f"Content-Type {content_type or '(none)'!r} is not accepted"


def test_the_text_limits_and_the_routes_docs_come_from_this_apps_settings(
    make_settings: Callable[..., Settings],
) -> None:
    app_client = TestClient(create_app(make_settings(max_texts=2, max_text_chars=5)))  # limits apply before any model
    assert "at most 2 items" in assert_error(app_client.post(URL, json={"texts": ["a", "b", "c"]}), 422,
                                            "invalid_input")["message"]
    assert "at most 5 characters" in assert_error(app_client.post(URL, json={"text": "sixsix"}), 422,
                                                 "invalid_input")["message"]
    documented = app_client.get("/openapi.json").json()["paths"][URL]["post"]
    assert documented["tags"] == ["inference"]
    # Each error status says when it happens and which shape its body has.
    unavailable = documented["responses"]["503"]
    assert unavailable["description"].startswith("Overloaded (queue full) or not ready")
    assert unavailable["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"text": 42}, "text"),
        ({"texts": "not a list"}, "texts"),
        ({"texts": ["ok", 7]}, "texts.1"),
        ({"text": None}, "text: Input should be a valid string"),
        ({}, "exactly one"),
        ({"text": "a", "texts": ["b"]}, "exactly one"),
        ({"text": "a", "colour": "red"}, "colour"),
        ([1, 2, 3], "body"),
        ("just a string", "body"),
        ({"texts": []}, "texts: List should have at least 1 item"),
        ({"text": "a", "model": 3}, "model"),
    ],
)
def test_wrong_types_and_shapes_are_a_422_that_names_the_field(client: TestClient, body, fragment: str) -> None:
    assert fragment in assert_error(client.post(URL, json=body), 422, "invalid_input")["message"]


def test_a_422_names_each_field_by_its_path_in_the_body_and_lists_at_most_five_problems(client: TestClient) -> None:
    message = assert_error(client.post(URL, json={"texts": [1, 2, 3, 4, 5, 6, 7]}), 422, "invalid_input")["message"]
    assert message.split("; ") == [f"texts.{index}: Input should be a valid string" for index in range(5)]
    assert assert_error(client.post(URL, json=[1]), 422, "invalid_input")["message"].startswith("body: ")


def test_too_many_texts_is_a_422_that_says_the_limit(client: TestClient) -> None:
    error = assert_error(client.post(URL, json={"texts": ["good"] * 65}), 422, "invalid_input")
    assert "texts: List should have at most 64 items" in error["message"]


def test_a_text_over_the_length_limit_is_a_422(client: TestClient) -> None:
    error = assert_error(client.post(URL, json={"texts": ["ok", "x" * 20_001]}), 422, "invalid_input")
    assert "texts.1: String should have at most 20000 characters" in error["message"]


def test_a_nul_character_is_a_422(client: TestClient) -> None:
    assert "NUL" in assert_error(client.post(URL, json={"text": "good\u0000bad"}), 422, "invalid_input")["message"]


def test_an_unpaired_surrogate_escape_is_not_json_a_utf8_text_can_carry(client: TestClient) -> None:
    response = client.post(URL, content=b'{"text": "bad \\ud800 data"}', headers={"Content-Type": "application/json"})
    assert assert_error(response, 400, "invalid_json")["accepted"] == "a UTF-8 JSON object"


def test_a_body_over_the_size_limit_is_a_413(client: TestClient) -> None:
    response = client.post(URL, json={"texts": ["x" * 10_000] * 8})  # ~80 KB against a 64 KiB limit
    assert_error(response, 413, "payload_too_large")
