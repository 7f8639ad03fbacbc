"""The OpenAPI document is valid, describes every route, and the app keeps to it under fuzzing."""

from __future__ import annotations

import asyncio
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import schemathesis
from aiohttp.test_utils import TestServer
from openapi_spec_validator import validate
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
from pydantic import SecretStr
{%- endif %}
from schemathesis.config import SchemathesisConfig

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.common.errors import InvalidRequestError
from {{ cookiecutter.package_name }}.common.jsonlib import JSONValue
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.web import validation
from {{ cookiecutter.package_name }}.web.openapi import ITEM_ID, document

from ..conftest import settings_for_tests
from ..fake_upstream import FakeUpstream

FUZZING = Path(__file__).parents[2] / "schemathesis.toml"
READ_ONLY = {"POST /api/items/batch"}  # a POST that writes nothing


def fuzzing_settings() -> dict[str, Any]:
    return tomllib.loads(FUZZING.read_text(encoding="utf-8"))


def writes_included() -> SchemathesisConfig:
    """The project's schemathesis.toml with its writes back in: here they reach the fake."""
    settings = fuzzing_settings()
    settings.pop("operations", None)
    return SchemathesisConfig.from_dict(settings)


SCHEMA = schemathesis.openapi.from_dict(document(), config=writes_included())
# Ids the document and the app must judge alike. (A trailing newline is left out: Python's
# jsonschema lets `$` match before it, JSON Schema's own regex dialect does not, nor the app.)
SAMPLE_IDS = ["42", "a.b~c-d_e", "x.", "A-1", "a" * 128, "a" * 129, "a..b", "..", ".a", "-a"]
SAMPLE_IDS += ["a/b", "a b", "é", "", "a?b", "a%2Fb", "a.-b", "_a"]


def test_document_is_valid_openapi_3_1() -> None:
    validate(document())


def test_every_route_is_documented_and_only_those(settings: Settings) -> None:
    served = {
        (route.method, route.resource.canonical)
        for route in create_app(settings).router.routes()
        if route.resource is not None and route.method != "HEAD"  # HEAD: GET without a body
    }
    documented = {
        (method.upper(), path)
        for path, operations in document()["paths"].items()
        for method in operations
    }
    assert served == documented


def test_fuzzing_a_deployed_service_leaves_every_write_out() -> None:
    writes = {
        f"{method.upper()} {path}"
        for path, operations in document()["paths"].items()
        for method in operations
        if method != "get"
    }
    (left_out,) = fuzzing_settings()["operations"]
    assert set(left_out["include-name"]) == writes - READ_ONLY
    assert left_out["enabled"] is False


@pytest.mark.parametrize("raw", SAMPLE_IDS)
def test_document_and_app_agree_on_item_ids(raw: str) -> None:
    in_document = jsonschema.Draft202012Validator(ITEM_ID).is_valid(raw)
    try:
        validation.item_id(raw)
    except InvalidRequestError:
        in_app = False
    else:
        in_app = True
    assert in_document == in_app


@pytest.mark.parametrize("raw", [0, 7, 7.0, 7.5, True, None, -1, validation.MAX_INTEGER_ID + 1])
def test_document_and_app_agree_on_other_ids(raw: JSONValue) -> None:
    batch = document()["components"]["schemas"]["Batch"]
    in_document = jsonschema.Draft202012Validator(batch).is_valid({"ids": [raw]})
    try:
        validation.batch_ids({"ids": [raw]})
    except InvalidRequestError:
        in_app = False
    else:
        in_app = True
    assert in_document == in_app


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The app and a fake upstream on an event loop of their own, in a thread: schemathesis
    makes synchronous calls, which would block a loop shared with the test."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    async def start() -> tuple[TestServer, TestServer]:
        upstream = TestServer(FakeUpstream().app, host="127.0.0.1")
        await upstream.start_server()
        base_url = str(upstream.make_url("")).rstrip("/")
        settings = settings_for_tests(
            upstream_base_url=base_url,
            upstream_retries=0,
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
            upstream_token_url=f"{base_url}/oauth/token",
            upstream_client_id=SecretStr("client-id"),  # what the fake knows by default
            upstream_client_secret=SecretStr("client-secret"),
{%- endif %}
        )
        service = TestServer(create_app(settings), host="127.0.0.1")
        await service.start_server()
        return service, upstream

    service, upstream = run(start())
    try:
        yield str(service.make_url("")).rstrip("/")
    finally:
        run(service.close())
        run(upstream.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.mark.slow  # computation: schemathesis generates and checks requests for every operation
@SCHEMA.parametrize()
def test_app_keeps_to_its_document(case: schemathesis.Case[Any], base_url: str) -> None:
    case.call_and_validate(base_url=base_url)
