{%- if cookiecutter.upstream_auth in ["api_key", "bearer"] -%}
"""The upstream's credentials go with every request, retries included, and a refusal is an
``UpstreamAuthError`` at once: no retry makes refused credentials valid."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.clients import {{ cookiecutter.__upstream_class }}
from {{ cookiecutter.package_name }}.common.errors import UpstreamAuthError
from {{ cookiecutter.package_name }}.settings import Settings

from ..fake_upstream import FakeUpstream, Reply


def secret_of(settings: Settings) -> str:
{%- if cookiecutter.upstream_auth == "api_key" %}
    return settings.upstream_api_key.get_secret_value()
{%- else %}
    return settings.upstream_bearer_token.get_secret_value()
{%- endif %}


async def test_every_request_carries_the_credentials_retries_included(
    upstream_client: {{ cookiecutter.__upstream_class }}, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.add({"id": 1, "name": "lamp"})
    fake_upstream.queue(Reply(status=503, json={}))

    item = await upstream_client.get_item("1")

    # The fake answers 401 to a request without them: the retry carried them too.
    assert item.name == "lamp"
    assert fake_upstream.methods == ["GET", "GET"]
{%- if cookiecutter.upstream_auth == "bearer" %}
    assert fake_upstream.authorizations == ["Bearer token-for-tests"] * 2
{%- endif %}


async def test_refused_credentials_are_an_auth_error_without_a_retry(
    upstream_client: {{ cookiecutter.__upstream_class }}, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.credentials = dict.fromkeys(fake_upstream.credentials, "other")

    with pytest.raises(UpstreamAuthError, match="refused the service's credentials") as raised:
        await upstream_client.get_item("1")

    assert raised.value.upstream_status == 401
    assert fake_upstream.methods == ["GET"]


@pytest.mark.parametrize("status", [401, 403])
async def test_a_401_or_403_is_final_for_writes_too(
    upstream_client: {{ cookiecutter.__upstream_class }}, fake_upstream: FakeUpstream, status: int
) -> None:
    fake_upstream.queue(Reply(status=status, json={}))

    with pytest.raises(UpstreamAuthError) as raised:
        await upstream_client.delete_item("1")

    assert raised.value.upstream_status == status
    assert fake_upstream.methods == ["DELETE"]


async def test_a_refusal_is_a_502_and_one_error_line_that_never_holds_the_secret(
    aiohttp_client: AiohttpClient,
    upstream_settings: Settings,
    fake_upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_upstream.credentials = dict.fromkeys(fake_upstream.credentials, "other")
    client = await aiohttp_client(create_app(upstream_settings))

    with caplog.at_level(logging.DEBUG):
        response = await client.get("/api/items/1")
        body = await response.text()

    assert response.status == 502
    assert "credentials" in body
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert [record.getMessage().split(":")[0] for record in errors] == [
        "upstream refused the service's credentials"
    ]
    secret = secret_of(upstream_settings)
    assert secret not in body
    assert secret not in caplog.text
    assert secret not in repr(upstream_settings)


async def test_the_service_answers_with_the_credentials_the_upstream_wants(
    aiohttp_client: AiohttpClient, upstream_settings: Settings, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.add({"id": 1, "name": "lamp"})
    client: web.Application = create_app(upstream_settings)

    response = await (await aiohttp_client(client)).get("/api/items/1")

    assert response.status == 200
    assert (await response.json())["name"] == "lamp"
{%- else -%}
"""OAuth2 client credentials against the fake upstream's own token endpoint: one token
request for many callers, renewal before expiry, the 401 replay, and a failing token endpoint
asked about once a second, its callers failing fast in between."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from urllib.parse import unquote_plus

import pytest
from pytest_aiohttp import AiohttpClient

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.clients import {{ cookiecutter.__upstream_class }}, {{ cookiecutter.__upstream_module }}
from {{ cookiecutter.package_name }}.clients.auth import (
    DEFAULT_LIFETIME,
    EXPIRY_MARGIN,
    RETRY_INTERVAL,
    ClientCredentials,
)
from {{ cookiecutter.package_name }}.clients.core import Instruments
from {{ cookiecutter.package_name }}.common.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.upstreams import upstream_policy

from ..fake_upstream import FakeUpstream, Reply
from .test_core import RecordingObserver

Client = {{ cookiecutter.__upstream_class }}
NewItem = {{ cookiecutter.__upstream_module }}.NewItem


class Clock:
    """A clock the test moves: token lifetimes without waiting for them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@asynccontextmanager
async def opened(
    settings: Settings, clock: Clock, observer: RecordingObserver | None = None
) -> AsyncIterator[Client]:
    """The client as ``upstreams.py`` opens it, on the test's clock."""
    instruments = Instruments(observer)
    tokens = ClientCredentials(
        settings.upstream_token_url,
        settings.upstream_client_id,
        settings.upstream_client_secret,
        scope=settings.upstream_scope,
        auth_method=settings.upstream_token_auth_method,
        upstream=Client.name,
        instruments=instruments,
        clock=clock,
    )
    policy = upstream_policy(settings)
    async with Client.open(settings.upstream_base_url, policy, instruments, tokens=tokens) as api:
        yield api


async def test_one_token_serves_every_call_until_it_is_due(
    upstream_settings: Settings, fake_upstream: FakeUpstream, clock: Clock
) -> None:
    fake_upstream.add(*({"id": n, "name": f"item {n}"} for n in range(3)))
    fake_upstream.token_lifetime = 100

    async with opened(upstream_settings, clock) as api:  # other items: nothing from a cache
        await api.get_item("0")
        clock.now += 100 - EXPIRY_MARGIN - 1
        await api.get_item("1")
        clock.now += 2  # within the margin: renewed before the upstream would refuse it
        await api.get_item("2")

    assert fake_upstream.issued == ["token-1", "token-2"]
    assert fake_upstream.authorizations == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


@pytest.mark.parametrize(
    ("expires_in", "kept"), [(None, DEFAULT_LIFETIME - EXPIRY_MARGIN), (10, 5.0)]
)
async def test_without_expires_in_the_default_lifetime_and_short_ones_half(
    upstream_settings: Settings,
    fake_upstream: FakeUpstream,
    clock: Clock,
    expires_in: float | None,
    kept: float,
) -> None:
    fake_upstream.add(*({"id": n, "name": f"item {n}"} for n in range(3)))
    fake_upstream.token_lifetime = expires_in

    async with opened(upstream_settings, clock) as api:
        await api.get_item("0")
        clock.now += kept - 0.5
        await api.get_item("1")
        clock.now += 1
        await api.get_item("2")

    assert fake_upstream.issued == ["token-1", "token-2"]


async def test_basic_authentication_form_urlencodes_the_id_and_secret_first(
    upstream_settings: Settings, fake_upstream: FakeUpstream, clock: Clock
) -> None:
    fake_upstream.add({"id": 1, "name": "lamp"})
    settings = replace(upstream_settings, upstream_scope="items:read items:write")

    async with opened(settings, clock) as api:
        await api.get_item("1")

    [authorization] = fake_upstream.token_authorizations
    assert authorization is not None
    scheme, _, encoded = authorization.partition(" ")
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    assert scheme == "Basic"
    assert user == "client+for+tests%3A1"  # RFC 6749 2.3.1: form-urlencoded, then Basic
    assert unquote_plus(user) == settings.upstream_client_id.get_secret_value()
    assert unquote_plus(password) == settings.upstream_client_secret.get_secret_value()
    assert fake_upstream.token_forms == [
        {"grant_type": "client_credentials", "scope": "items:read items:write"}
    ]


async def test_client_secret_post_sends_them_in_the_form_instead(
    upstream_settings: Settings, fake_upstream: FakeUpstream, clock: Clock
) -> None:
    fake_upstream.add({"id": 1, "name": "lamp"})
    settings = replace(upstream_settings, upstream_token_auth_method="client_secret_post")

    async with opened(settings, clock) as api:
        await api.get_item("1")

    assert fake_upstream.token_authorizations == [None]
    assert fake_upstream.token_forms == [
        {
            "grant_type": "client_credentials",
            "client_id": settings.upstream_client_id.get_secret_value(),
            "client_secret": settings.upstream_client_secret.get_secret_value(),
        }
    ]


async def test_many_calls_finding_no_token_cause_one_token_request(
    upstream_settings: Settings, fake_upstream: FakeUpstream, clock: Clock
) -> None:
    fake_upstream.add(*({"id": n, "name": f"item {n}"} for n in range(50)))

    async with opened(upstream_settings, clock) as api:
        # 50 calls for 50 items (no coalescing): each finds no token before any fetch ends.
        items = await asyncio.gather(*(api.get_item(str(n)) for n in range(50)))

    assert [item.name for item in items] == [f"item {n}" for n in range(50)]
    assert fake_upstream.issued == ["token-1"]
    assert len(fake_upstream.token_forms) == 1


async def test_a_401_replays_the_call_once_with_a_fresh_token_and_the_same_key(
    upstream_settings: Settings, fake_upstream: FakeUpstream, clock: Clock
) -> None:
    async with opened(upstream_settings, clock) as api:
        await api.create_item(NewItem(name="first"))
        fake_upstream.revoke()  # the upstream no longer takes token-1, though not yet due

        created = await api.create_item(NewItem(name="second"), idempotency_key="key-2")

    assert created.name == "second"
    assert fake_upstream.issued == ["token-1", "token-2"]
    assert fake_upstream.authorizations[1:] == ["Bearer token-1", "Bearer token-2"]
    assert fake_upstream.idempotency_keys[1:] == ["key-2", "key-2"]
    assert [item["name"] for item in fake_upstream.items.values()] == ["first", "second"]


async def test_a_second_401_is_an_auth_error_and_one_error_line(
    upstream_settings: Settings,
    fake_upstream: FakeUpstream,
    aiohttp_client: AiohttpClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_upstream.queue(Reply(status=401, json={}), Reply(status=401, json={}))
    client = await aiohttp_client(create_app(upstream_settings))

    with caplog.at_level(logging.DEBUG):
        response = await client.get("/api/items/1")

    assert response.status == 502
    assert fake_upstream.issued == ["token-1", "token-2"]
    assert fake_upstream.methods == ["GET", "GET"]
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("upstream refused the service's credentials")
    for secret in (upstream_settings.upstream_client_secret, upstream_settings.upstream_client_id):
        assert secret.get_secret_value() not in caplog.text
    assert "token-" not in caplog.text
    assert "token-" not in await response.text()


async def test_a_403_is_final_at_once(
    upstream_settings: Settings, fake_upstream: FakeUpstream, clock: Clock
) -> None:
    fake_upstream.queue(Reply(status=403, json={}))

    async with opened(upstream_settings, clock) as api:
        with pytest.raises(UpstreamAuthError) as raised:
            await api.get_item("1")

    assert raised.value.upstream_status == 403
    assert fake_upstream.issued == ["token-1"]


async def test_a_late_401_for_an_old_token_keeps_the_fresh_one(
    upstream_settings: Settings, fake_upstream: FakeUpstream, clock: Clock
) -> None:
    tokens = ClientCredentials(
        f"{fake_upstream.base_url}/oauth/token",
        upstream_settings.upstream_client_id,
        upstream_settings.upstream_client_secret,
        clock=clock,
    )
    async with Client.open(fake_upstream.base_url, upstream_policy(upstream_settings)) as api:
        session = api._session  # the token source borrows the client's session
        first = await tokens.fresh(session, 1.0)
        tokens.refused(first)
        second = await tokens.fresh(session, 1.0)
        tokens.refused(first)  # a late 401 to a call that went out with the old token

        assert tokens.current() == second != first


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (Reply(status=503, json={}), UpstreamUnavailableError, "answered 503"),
        (Reply(status=400, json={"error": "invalid_scope"}), UpstreamAuthError, "invalid_scope"),
        (Reply(status=401, json={"error": "a secret?"}), UpstreamAuthError, "an error$"),
        (Reply(body=b'{"access_token": '), UpstreamUnavailableError, "not in JSON"),
        (Reply(json={"token_type": "Bearer"}), UpstreamUnavailableError, "no usable token"),
        (Reply(json={"access_token": "a b", "token_type": "Bearer"}), UpstreamError, "usable"),
        (Reply(json={"access_token": "t", "token_type": "mac"}), UpstreamError, "not a Bearer"),
        (
            Reply(json={"access_token": "t", "token_type": "Bearer", "expires_in": "soon"}),
            UpstreamUnavailableError,
            "expires_in",
        ),
        (
            Reply(status=302, json={}, headers={"Location": "http://127.0.0.1:9/elsewhere"}),
            UpstreamUnavailableError,
            "answered 302",
        ),
        (Reply(hang=True), UpstreamTimeoutError, "token"),
    ],
)
@pytest.mark.looptime
async def test_a_failing_token_endpoint_is_a_clear_error_and_the_api_is_not_called(
    upstream_settings: Settings,
    fake_upstream: FakeUpstream,
    clock: Clock,
    reply: Reply,
    error: type[UpstreamError],
    message: str,
) -> None:
    fake_upstream.queue_token(reply)
    settings = replace(upstream_settings, upstream_timeout=0.3)

    async with opened(settings, clock) as api:
        with pytest.raises(error, match=message) as raised:
            await api.get_item("1")

    assert raised.value.status in {502, 504}
    assert fake_upstream.methods == []
    assert len(fake_upstream.token_forms) == 1
    fake_upstream.release()


async def test_an_unreachable_token_endpoint_is_a_502(
    upstream_settings: Settings, fake_upstream: FakeUpstream, clock: Clock, unused_tcp_port: int
) -> None:
    settings = replace(
        upstream_settings, upstream_token_url=f"http://127.0.0.1:{unused_tcp_port}/token"
    )

    async with opened(settings, clock) as api:
        with pytest.raises(UpstreamUnavailableError, match="no answer from the token endpoint"):
            await api.get_item("1")

    assert fake_upstream.methods == []


async def test_a_failing_endpoint_is_asked_once_per_interval_callers_fail_fast_between(
    upstream_settings: Settings,
    fake_upstream: FakeUpstream,
    clock: Clock,
    observer: RecordingObserver,
) -> None:
    fake_upstream.add({"id": 1, "name": "lamp"})
    fake_upstream.queue_token(Reply(status=503, json={}), Reply(status=503, json={}))

    async with opened(upstream_settings, clock, observer) as api:
        for _ in range(3):
            results = await asyncio.gather(
                *(api.get_item(str(n)) for n in range(20)), return_exceptions=True
            )
            assert all(isinstance(result, UpstreamUnavailableError) for result in results)
            clock.now += RETRY_INTERVAL / 4
        assert len(fake_upstream.token_forms) == 1  # 60 callers, under a second: one request
        clock.now += RETRY_INTERVAL
        with pytest.raises(UpstreamUnavailableError):
            await api.get_item("1")
        clock.now += RETRY_INTERVAL
        item = await api.get_item("1")  # the endpoint has recovered

    assert item.name == "lamp"
    assert len(fake_upstream.token_forms) == 3
    assert observer.token_requests == [
        (Client.name, "error"),
        (Client.name, "error"),
        (Client.name, "ok"),
    ]
{%- endif %}
