"""POST /classify-image over the app, on the tiny colour model."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.service.images import PDF, SVG, encode, jpeg_rotated_by_exif, png_bomb, solid

URL = "/classify-image"


def post_raw(client: TestClient, data: bytes, content_type: str = "image/png", **params):
    return client.post(URL, content=data, headers={"Content-Type": content_type}, params=params)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body["error"]


@pytest.mark.parametrize("colour", ["red", "green", "blue"])
@pytest.mark.parametrize(("fmt", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"),
                                                   ("WEBP", "image/webp"), ("BMP", "image/bmp"),
                                                   ("GIF", "image/gif")])
def test_a_raw_image_body_gets_its_colour(client: TestClient, colour: str, fmt: str, content_type: str) -> None:
    response = post_raw(client, solid(colour, fmt=fmt), content_type)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"]) == ("tiny-image", 1)
    [result] = body["results"]
    assert result["label"] == colour and result["probability"] > 0.9
    assert [entry["label"] for entry in result["top_k"]][0] == colour
    assert len(result["top_k"]) == 3


def test_multipart_images_are_answered_in_order_with_their_file_names(client: TestClient) -> None:
    colours = ["blue", "red", "green", "red"]
    files = [("file", (f"{i}-{c}.png", solid(c), "image/png")) for i, c in enumerate(colours)]
    response = client.post(URL, files=files)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["label"] for r in results] == colours
    assert [r["filename"] for r in results] == [f"{i}-{c}.png" for i, c in enumerate(colours)]


def test_top_k_sets_the_list_length_and_is_capped_at_the_label_count(client: TestClient) -> None:
    one = post_raw(client, solid("red"), top_k=1).json()["results"][0]["top_k"]
    many = post_raw(client, solid("red"), top_k=50).json()["results"][0]["top_k"]
    assert len(one) == 1 and len(many) == 3
    probabilities = [entry["probability"] for entry in many]
    assert probabilities == sorted(probabilities, reverse=True)


def test_the_model_can_be_named(client: TestClient) -> None:
    assert post_raw(client, solid("red"), model="tiny-image").status_code == 200


def test_any_mode_and_orientation_is_accepted(client: TestClient) -> None:
    grey = encode(Image.new("L", (30, 30), 90), "PNG")
    palette = encode(Image.new("RGB", (30, 30), (0, 0, 255)).convert("P"), "PNG")
    assert post_raw(client, grey).status_code == 200
    assert post_raw(client, palette).json()["results"][0]["label"] == "blue"
    assert post_raw(client, jpeg_rotated_by_exif(), "image/jpeg").status_code == 200


@pytest.mark.parametrize("bad", [-1, 0, 101, "three"])
def test_a_bad_top_k_is_a_422(client: TestClient, bad) -> None:
    assert_error(post_raw(client, solid("red"), top_k=bad), 422, "invalid_input")


def test_an_unknown_model_is_a_404_that_lists_the_models(client: TestClient) -> None:
    error = assert_error(post_raw(client, solid("red"), model="no-such-model"), 404, "not_found")
    assert "tiny-image" in error["accepted"]


def test_a_text_model_is_not_an_image_model(client: TestClient) -> None:
    assert_error(post_raw(client, solid("red"), model="tiny-text"), 404, "not_found")


def test_an_empty_body_is_a_400(client: TestClient) -> None:
    assert_error(post_raw(client, b""), 400, "invalid_image")


def test_a_zero_byte_file_is_a_400(client: TestClient) -> None:
    response = client.post(URL, files=[("file", ("empty.png", b"", "image/png"))])
    assert "empty" in assert_error(response, 400, "invalid_image")["message"]


@pytest.mark.parametrize("data", [b"\x00\x01 definitely not an image", SVG, PDF,
                                  encode(Image.new("RGB", (4, 4)), "TIFF")], ids=["junk", "svg", "pdf", "tiff"])
def test_bytes_that_are_not_a_supported_image_are_a_400(client: TestClient, data: bytes) -> None:
    error = assert_error(post_raw(client, data), 400, "invalid_image")
    assert "PNG" in error["accepted"]
    assert error["message"].startswith("image 0: ")  # a raw body has no file name to add


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_truncated_image_is_a_400(client: TestClient, fmt: str) -> None:
    import numpy as np

    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = encode(noisy, fmt)
    assert "truncated" in assert_error(post_raw(client, data[:-200]), 400, "invalid_image")["message"]


def test_one_bad_file_among_good_ones_is_named(client: TestClient) -> None:
    files = [("file", ("good.png", solid("red"), "image/png")), ("file", ("bad.png", b"junk", "image/png"))]
    assert "image 1 (bad.png)" in assert_error(client.post(URL, files=files), 400, "invalid_image")["message"]


@pytest.mark.parametrize("content_type", ["image/tiff", "image/svg+xml", "application/pdf", "text/plain",
                                          "application/json"])
def test_a_content_type_that_is_not_accepted_is_a_415(client: TestClient, content_type: str) -> None:
    error = assert_error(post_raw(client, solid("red"), content_type), 415, "unsupported_media_type")
    assert "image/png" in error["accepted"] and "multipart/form-data" in error["accepted"]


def test_no_content_type_is_a_415(client: TestClient) -> None:
    assert_error(client.post(URL, content=solid("red")), 415, "unsupported_media_type")


def test_a_decompression_bomb_is_a_413(client: TestClient) -> None:
    error = assert_error(post_raw(client, png_bomb()), 413, "payload_too_large")
    assert "pixels" in error["message"]


def test_a_body_over_the_limit_is_a_413(client: TestClient) -> None:
    # The suite's app allows 64 KiB.
    assert_error(post_raw(client, b"\x89PNG" + b"\x00" * 70_000), 413, "payload_too_large")


def test_a_chunked_body_over_the_limit_is_a_413_while_reading(client: TestClient) -> None:
    def chunks():
        for _ in range(100):
            yield b"\x00" * 8192

    response = client.post(URL, content=chunks(), headers={"Content-Type": "image/png"})
    assert_error(response, 413, "payload_too_large")


def test_too_many_files_is_a_400_that_says_the_limit(client: TestClient) -> None:
    files = [("file", (f"{i}.png", solid("red", (2, 2)), "image/png")) for i in range(17)]
    error = assert_error(client.post(URL, files=files), 400, "bad_request")
    assert "more than 16 parts" in error["message"]


def test_a_file_part_without_a_file_name_is_still_an_image(client: TestClient) -> None:
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Type: image/png\r\n\r\n"
            .encode() + solid("green") + f"\r\n--{boundary}--\r\n".encode())
    response = client.post(URL, content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 200, response.text
    assert response.json()["results"][0] == response.json()["results"][0] | {"filename": None, "label": "green"}


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=zzz"])
def test_a_malformed_multipart_body_is_a_400(client: TestClient, content_type: str) -> None:
    response = client.post(URL, content=b"--yyy\r\ngarbage", headers={"Content-Type": content_type})
    assert_error(response, 400, "bad_request")


def test_multipart_without_a_file_part_is_a_400(client: TestClient) -> None:
    response = client.post(URL, data={"other": "value"}, files=[("picture", ("a.png", solid("red"), "image/png"))])
    assert "'file'" in assert_error(response, 400, "bad_request")["message"]


def test_a_text_field_named_file_is_read_as_image_bytes_and_refused_as_not_an_image(client: TestClient) -> None:
    response = client.post(URL, data={"file": "not a file"}, files=[("x", ("a.png", b"1", "image/png"))])
    assert_error(response, 400, "invalid_image")
