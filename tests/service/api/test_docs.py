"""/docs: Swagger UI from the service's own files under a strict policy, over HTTP with the real app and tiny models.

tests/browser/test_docs_in_chromium.py runs the same page in a real browser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api import docs
from service.api.docs import DOCS_DIR, swagger_ui_dir
from service.app import create_app
from service.settings import Settings

KEY = "docs-test-key-0123456789"
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def docs_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as client:
        yield client


def _csp(headers: object) -> dict[str, str]:
    header = headers["content-security-policy"]  # type: ignore[index]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


def _referenced(html: str) -> list[str]:
    """Every URL the page's markup points at (scripts, stylesheets, icons, links)."""
    return re.findall(r'(?:src|href)="([^"]*)"', html)


def test_docs_are_served_from_the_services_own_file_with_a_strict_csp(docs_client: TestClient) -> None:
    response = docs_client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == (DOCS_DIR / "index.html").read_bytes()
    policy = _csp(response.headers)
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["img-src"] == "'self' data:"  # swagger-ui.css's icons, and nothing from elsewhere
    assert policy["connect-src"] == "'self'"
    assert policy["base-uri"] == policy["form-action"] == policy["frame-ancestors"] == "'none'"
    header = response.headers["content-security-policy"]
    assert "unsafe" not in header and not re.search(r"https?:|\*|blob:", header)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_docs_page_references_only_same_origin_files_and_runs_no_inline_code(docs_client: TestClient) -> None:
    html = docs_client.get("/docs").text
    assert "cdn" not in html.lower() and "http://" not in html and "https://" not in html
    referenced = _referenced(html)
    assert sorted(referenced) == ["/docs/favicon.png", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui-init.js",
                                  "/docs/swagger-ui.css"]
    assert all(url.startswith("/") and not url.startswith("//") for url in referenced)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.DOTALL)
    assert len(scripts) == 2 and all("src=" in attributes and not body.strip() for attributes, body in scripts)
    assert "<style" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html)


def test_every_file_the_page_references_is_served_with_its_type_and_the_policy(docs_client: TestClient) -> None:
    for url in _referenced(docs_client.get("/docs").text):
        response = docs_client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith(MEDIA_TYPES[Path(url).suffix]), url
        assert _csp(response.headers)["default-src"] == "'none'", url
        name = url.removeprefix("/docs/")
        assert response.content == ((DOCS_DIR if name in docs.OWN_FILES else swagger_ui_dir()) / name).read_bytes()


def test_swagger_ui_starts_on_this_services_schema_with_nothing_from_elsewhere(docs_client: TestClient) -> None:
    html = docs_client.get("/docs").text
    schema_url = re.search(r'data-openapi-url="([^"]*)"', html)
    assert schema_url and schema_url.group(1) == docs_client.app.openapi_url  # type: ignore[attr-defined]
    script = docs_client.get("/docs/swagger-ui-init.js").text
    assert "dataset.openapiUrl" in script and "validatorUrl: null" in script
    assert not re.search(r"https?:|//[a-z]", script.replace("// ", ""))
    # The stylesheet's images are all data: URLs, and it imports nothing.
    stylesheet = docs_client.get("/docs/swagger-ui.css").text
    images = re.findall(r"url\(\s*[\"']?([^\"')]*)", stylesheet)
    assert images and all(url.startswith("data:") for url in images)
    assert "@import" not in stylesheet


def test_only_the_listed_files_are_served_and_fastapis_other_pages_are_gone(docs_client: TestClient) -> None:
    # redoc.standalone.js is in the package's folder beside Swagger UI's files, but is not served.
    for path in ("/redoc", "/docs/oauth2-redirect", "/docs/redoc.standalone.js", "/docs/index.html",
                 "/docs/__init__.py", "/docs/%2e%2e/openapi.json", "/static-offline-docs/swagger-ui.css"):
        response = docs_client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found", path
    paths = docs_client.get("/openapi.json").json()["paths"]
    assert not any(path.startswith("/docs") for path in paths)


@pytest.mark.parametrize("keys", ["", KEY])
def test_the_docs_open_without_a_key_and_offer_authorize_exactly_when_keys_are_on(
    make_settings: Callable[..., Settings], keys: str
) -> None:
    with TestClient(create_app(make_settings(api_keys=keys))) as client:
        for path in ("/docs", "/docs/swagger-ui-bundle.js", "/openapi.json"):
            assert client.get(path).status_code == 200, path
        # Swagger UI shows its Authorize button for the schema's security schemes: declared only with keys on.
        schemes = client.get("/openapi.json").json().get("components", {}).get("securitySchemes", {})
        assert sorted(schemes) == (["APIKeyHeader", "HTTPBearer"] if keys else [])


def test_the_docs_stay_when_the_page_is_off(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(page_enabled=False))) as client:
        assert client.get("/").status_code == 404
        assert client.get("/docs").status_code == 200
        assert client.get("/docs/swagger-ui.css").status_code == 200


def test_a_missing_swagger_ui_file_stops_the_app_from_being_built(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(docs.SWAGGER_UI_FILES, "swagger-ui-standalone-preset.js", "text/javascript")
    with pytest.raises(RuntimeError, match=r"/docs/swagger-ui-standalone-preset\.js -> .*fastapi_offline"):
        create_app(make_settings())


def test_without_the_package_the_error_says_how_to_install_it(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docs.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="fastapi-offline package is not installed.*uv.lock"):
        create_app(make_settings())
