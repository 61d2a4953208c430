"""The page at / and the card-files route, over HTTP with the real app and the tiny models."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.api.docs import CONTENT_SECURITY_POLICY as DOCS_POLICY
from service.api.page import ASSETS, CONTENT_SECURITY_POLICY, PAGE_DIR
from service.app import create_app
from service.settings import Settings
from tests.card_plots import PLOT_NAMES, copy_with_plots, draw_plot

KEY = "page-test-key-0123456789"
FILES = "/models/{name}/versions/{version}/files"


@pytest.fixture(scope="module")
def plotted_dir(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny models with plots, plus files the route must refuse to serve."""
    root = copy_with_plots(artifacts_dir, tmp_path_factory.mktemp("page") / "artifacts")
    version_dir = root / "tiny-image" / "1"
    (version_dir / "notes.txt").write_text("not a card file")
    (version_dir / ".hidden.png").write_bytes((version_dir / PLOT_NAMES[0]).read_bytes())
    outside = draw_plot(root.parent / "outside.png", seed=9)
    (version_dir / "linked-out.png").symlink_to(outside)
    return root


@pytest.fixture(scope="module")
def page_client(make_settings: Callable[..., Settings], plotted_dir: Path) -> Iterator[TestClient]:
    # One version of each model loaded, so tiny-text v1 is on disk but not loaded.
    with TestClient(create_app(make_settings(artifacts_dir=plotted_dir, model_versions=1))) as client:
        yield client


def _csp(response_headers: dict[str, str] | object) -> dict[str, str]:
    header = response_headers["content-security-policy"]  # type: ignore[index]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


def test_the_page_is_served_at_the_root_with_a_strict_csp(page_client: TestClient) -> None:
    response = page_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.content == (PAGE_DIR / "index.html").read_bytes()
    policy = _csp(response.headers)
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    # Nothing inline and no other origin anywhere in the policy.
    assert "unsafe" not in response.headers["content-security-policy"]
    assert not re.search(r"https?:|\*", response.headers["content-security-policy"])
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_page_has_no_inline_script_or_style_and_no_external_reference(page_client: TestClient) -> None:
    html = page_client.get("/").text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.DOTALL)
    assert scripts and all("src=" in attributes and not body.strip() for attributes, body in scripts)
    assert "<style" not in html and " style=" not in html and " on" + "click=" not in html
    for asset in ("/page/page.js", "/page/page.css", "/page/favicon.svg"):
        assert asset in html
    for name in ["index.html", *ASSETS]:
        # An XML namespace is a name, not something fetched.
        text = re.sub(r'xmlns="[^"]*"', "", (PAGE_DIR / name).read_text())
        assert re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text) is None, name
        assert "@import" not in text and "eval(" not in text, name


def test_the_script_builds_the_page_from_text_never_from_markup() -> None:
    # Model names, labels, error messages and a rollback's reason come from the server (and from
    # whoever wrote a card or a policy): the script only ever sets them as text, so none of it
    # can become an element.
    script = (PAGE_DIR / "page.js").read_text()
    for parses_markup in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "DOMParser",
                          "createContextualFragment"):
        assert parses_markup not in script, parses_markup


@pytest.mark.parametrize(("path", "media_type"), [
    ("/page/page.js", "text/javascript"),
    ("/page/page.css", "text/css"),
    ("/page/favicon.svg", "image/svg+xml"),
])
def test_assets_and_favicon_are_served_with_the_csp(page_client: TestClient, path: str, media_type: str) -> None:
    response = page_client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.content == (PAGE_DIR / path.rsplit("/", 1)[1]).read_bytes()
    assert _csp(response.headers)["default-src"] == "'none'"


def test_only_the_listed_assets_are_served(page_client: TestClient) -> None:
    for path in ("/page/__init__.py", "/page/index.html", "/page/%2e%2e/settings.py", "/page/"):
        assert page_client.get(path).status_code == 404, path
    # A query cannot choose another file either.
    assert page_client.get("/page/page.css", params={"name": "__init__.py"}).content == (
        PAGE_DIR / "page.css").read_bytes()


def test_the_page_is_not_in_the_api_schema_and_docs_keep_their_own_headers(page_client: TestClient) -> None:
    paths = page_client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(path.startswith("/page") for path in paths)
    docs = page_client.get("/docs")
    assert docs.status_code == 200
    # /docs has a policy of its own (service/api/docs/), which Swagger UI's stylesheet needs: the page's does not
    # reach it, nor it the page.
    assert docs.headers["content-security-policy"] == DOCS_POLICY != CONTENT_SECURITY_POLICY
    assert page_client.get("/").headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_page_answers_on_the_page_without_a_key_when_keys_are_on(
    make_settings: Callable[..., Settings], plotted_dir: Path
) -> None:
    with TestClient(create_app(make_settings(artifacts_dir=plotted_dir, api_keys=KEY))) as client:
        assert client.get("/").status_code == 200
        assert client.get("/page/page.js").status_code == 200
        # ...while the card files, like every model route, need the key.
        path = FILES.format(name="tiny-image", version=1) + "/" + PLOT_NAMES[0]
        refused = client.get(path)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        assert client.get(FILES.format(name="tiny-image", version=1)).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer wrong-key-0123456789"}).status_code == 401
        allowed = client.get(path, headers={"Authorization": f"Bearer {KEY}"})
        assert allowed.status_code == 200 and allowed.headers["content-type"] == "image/png"
        # ...and the schema says so.
        paths = client.get("/openapi.json").json()["paths"]
        for route in (FILES, FILES + "/{filename}"):
            assert "401" in paths[route]["get"]["responses"], route


def test_the_setting_turns_the_page_off(make_settings: Callable[..., Settings], plotted_dir: Path) -> None:
    with TestClient(create_app(make_settings(artifacts_dir=plotted_dir, page_enabled=False))) as client:
        for path in ("/", "/page/page.js", "/page/page.css", "/page/favicon.svg"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"
        assert client.get("/models").status_code == 200  # the API itself is unchanged


def test_the_setting_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().page_enabled is True
    monkeypatch.setenv("SERVICE_PAGE_ENABLED", "false")
    assert Settings().page_enabled is False


# --- GET /models/{name}/versions/{version}/files[/{filename}] ---------------------------------


def test_a_loaded_versions_plot_is_served_as_png(page_client: TestClient, plotted_dir: Path) -> None:
    for name in PLOT_NAMES:
        response = page_client.get(FILES.format(name="tiny-image", version=1) + f"/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert response.content == (plotted_dir / "tiny-image" / "1" / name).read_bytes()
        assert Image.open(io.BytesIO(response.content)).format == "PNG"


def test_the_card_itself_is_served_as_json(page_client: TestClient) -> None:
    response = page_client.get(FILES.format(name="tiny-text", version=2) + "/model.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content)["version"] == 2


def test_the_listing_names_only_servable_files(page_client: TestClient) -> None:
    response = page_client.get(FILES.format(name="tiny-image", version=1))
    assert response.status_code == 200
    assert response.json() == {"name": "tiny-image", "version": 1, "files": sorted([*PLOT_NAMES, "model.json"])}


@pytest.mark.parametrize("filename", [
    "%2e%2e",  # ".." once the path is decoded
    "..",
    "%2e%2e%2f%2e%2e%2fsettings.py",
    "..%2Fmodel.json",
    "%2Fetc%2Fpasswd",  # an absolute path
    "%2Fetc%2Fhostname.png",
    "%5c..%5cmodel.json",  # backslashes
    "model.json%00.png",  # NUL
    "saved_model.pb",  # in the folder, but not a card file
    "notes.txt",
    "variables",  # a folder
    ".hidden.png",
    "linked-out.png",  # a symlink pointing out of the folder
    "no-such-plot.png",
    "MODEL.JSON",
])
def test_anything_but_a_plain_card_file_name_is_refused(page_client: TestClient, filename: str) -> None:
    response = page_client.get(FILES.format(name="tiny-image", version=1) + f"/{filename}")
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    assert b"root:" not in response.content


@pytest.mark.parametrize(("name", "version", "message", "accepted"), [
    ("tiny-text", 1, "version 1 of 'tiny-text' is not loaded", "one of: 2"),  # on disk, not loaded
    ("tiny-image", 7, "version 7 of 'tiny-image' is not loaded", "one of: 1"),
    ("no-such-model", 1, "no model named 'no-such-model'", "one of: tiny-image, tiny-text"),
])
def test_versions_not_loaded_and_unknown_models_are_404(
    page_client: TestClient, name: str, version: int, message: str, accepted: str
) -> None:
    for path in (FILES.format(name=name, version=version), FILES.format(name=name, version=version) + "/model.json"):
        response = page_client.get(path)
        assert response.status_code == 404
        assert (response.json()["error"]["message"], response.json()["error"]["accepted"]) == (message, accepted)


def test_the_card_file_routes_are_in_the_schema_with_their_responses(page_client: TestClient) -> None:
    paths = page_client.get("/openapi.json").json()["paths"]
    one = paths["/models/{name}/versions/{version}/files/{filename}"]["get"]
    assert {"200", "404", "422"} <= set(one["responses"])
    assert set(one["responses"]["200"]["content"]) == {"image/png", "application/json"}
    listing = paths["/models/{name}/versions/{version}/files"]["get"]
    assert {"200", "404", "422"} <= set(listing["responses"])
