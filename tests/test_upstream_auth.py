"""Upstream authentication end to end: each method's baked service, started with ``python -m``,
against the fake upstream that wants its credentials (and, for OAuth2, is its token endpoint).

The canary test starts each with distinctive secret values, DEBUG logging, the access log,
metrics and tracing on, drives every error path, and looks for the secrets, plain or encoded,
in everything the service let out: its output, its answers, ``/metrics`` and the spans a real
OTLP receiver got. The only place they may go is the requests to the upstream and the token
endpoint, which the fake refuses without them.

Everything listens on 127.0.0.1, every wait is bounded, and every process is stopped by pid.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
import pytest
from conftest import Bake, Install
from matrix import DEFAULT_PYTHON
from support.otlp_receiver import otlp_receiver
from support.processes import fake_upstream, start_service, stop

METHODS = ["api_key", "bearer", "oauth2_client_credentials"]
# Distinctive values, with characters that every encoding changes.
CANARIES = {
    "api_key": {"UPSTREAM_API_KEY": "kanarie-api-key/+=42"},
    "bearer": {"UPSTREAM_BEARER_TOKEN": "kanarie-bearer-token.+/42"},
    "oauth2_client_credentials": {
        "UPSTREAM_CLIENT_ID": "kanarie-client id:42",
        "UPSTREAM_CLIENT_SECRET": 'kanarie-secret/+= "42"',
    },
}
TOKEN_PREFIX = "kanarie-access-token-"  # what the fake token endpoint issues

pytestmark = [pytest.mark.slow]


def fake_auth(method: str, secrets: dict[str, str]) -> dict[str, object]:
    """What the fake upstream wants: the credentials in ``secrets``."""
    if method == "api_key":
        return {"credentials": {"X-API-Key": secrets["UPSTREAM_API_KEY"]}}
    if method == "bearer":
        return {"credentials": {"Authorization": f"Bearer {secrets['UPSTREAM_BEARER_TOKEN']}"}}
    return {
        "requires_token": True,
        "client_id": secrets["UPSTREAM_CLIENT_ID"],
        "client_secret": secrets["UPSTREAM_CLIENT_SECRET"],
        "token_prefix": TOKEN_PREFIX,
    }


def leak_forms(secrets: dict[str, str]) -> set[str]:
    """Each secret as it could leak: plain, percent- and form-encoded, JSON-escaped, base64;
    for OAuth2 also the HTTP Basic pair; and the access tokens' prefix."""
    forms = {TOKEN_PREFIX}
    for value in secrets.values():
        forms |= {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
        forms.add(base64.b64encode(value.encode()).decode().rstrip("="))
    if "UPSTREAM_CLIENT_ID" in secrets:
        client_id, secret = secrets["UPSTREAM_CLIENT_ID"], secrets["UPSTREAM_CLIENT_SECRET"]
        pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
        forms.add(base64.b64encode(pair.encode()).decode().rstrip("="))
    return forms


@pytest.fixture(
    scope="module",
    params=[pytest.param(m, id=m, marks=pytest.mark.xdist_group(f"auth-{m}")) for m in METHODS],
)
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def auth_python(method: str, bake: Bake, install: Install) -> Path:
    project = bake(upstream_auth=method, use_metrics=True, use_tracing=True)
    return install(project, DEFAULT_PYTHON)


class Service:
    """A started service: its URL and everything it wrote."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def started(python: Path, log: Path, env: dict[str, str]) -> Iterator[Service]:
    """The service with ``env`` over this environment (less its OTEL_ and UPSTREAM_ variables);
    stopped with SIGTERM at the end, which it must survive with exit status 0."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "UPSTREAM_"))}
    defaults = {"UPSTREAM_RETRY_BACKOFF": "0", "UPSTREAM_TIMEOUT": "2"}
    process, url = start_service(python, log, inherited | defaults | env)
    try:
        yield Service(process, url, log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        stop(process)


def call(url: str, method: str = "GET", body: object = None) -> tuple[int, str]:
    """Status and the whole answer (headers and body) as text."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, f"{answer.headers}\n{answer.read().decode()}"
    except urllib.error.HTTPError as error:
        return error.code, f"{error.headers}\n{error.read().decode()}"


def control(upstream: str, path: str, body: object = None) -> Any:
    """The fake upstream's control and statistics routes."""
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(upstream + path, data=data, timeout=5) as answer:
        return json.loads(answer.read())


def service_env(method: str, upstream: str, secrets: dict[str, str]) -> dict[str, str]:
    env = dict(secrets)
    if method == "oauth2_client_credentials":
        env["UPSTREAM_TOKEN_URL"] = f"{upstream}/oauth/token"
    return env | {"UPSTREAM_BASE_URL": upstream}


def test_no_secret_leaks_on_any_path(method: str, auth_python: Path, tmp_path: Path) -> None:
    secrets = CANARIES[method]
    wrong = {name: f"{value}-wrong" for name, value in secrets.items()}
    seen: list[str] = []  # everything the services let out
    with otlp_receiver() as receiver, fake_upstream(auth=fake_auth(method, secrets)) as upstream:
        # One secret from a file, the Docker and Kubernetes way, with its trailing newline.
        first, *rest = secrets
        secret_file = tmp_path / "secret"
        secret_file.write_text(secrets[first] + "\n", encoding="utf-8")
        env = service_env(method, upstream, {name: secrets[name] for name in rest})
        env |= {
            f"{first}_FILE": str(secret_file),
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "json",
            "ACCESS_LOG": "true",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
        with started(auth_python, tmp_path / "service.log", env) as service:
            statuses = {}
            for path in ["ok-1", "boom", "missing", "hang", "badjson"]:
                statuses[path], answer = call(f"{service.url}/api/items/{path}")
                seen.append(answer)
            statuses["post"], answer = call(f"{service.url}/api/items", "POST", {"name": "x"})
            seen.append(answer)
            if method == "oauth2_client_credentials":
                control(upstream, "/__revoke", {})
                statuses["replayed"], answer = call(f"{service.url}/api/items/ok-2")
                seen.append(answer)
                control(upstream, "/__revoke", {})
                control(
                    upstream,
                    "/__token_replies",
                    [{"status": 400, "json": {"error": "invalid_client"}}],
                )
                for n in (3, 4):  # refused, then failing fast within the retry interval
                    statuses[f"token-{n}"], answer = call(f"{service.url}/api/items/ok-{n}")
                    seen.append(answer)
            seen.append(call(f"{service.url}/metrics")[1])
        seen.append(service.output())

        # Wrong credentials: the upstream (or its token endpoint) refuses them.
        wrong_env = service_env(method, upstream, wrong) | {"LOG_LEVEL": "DEBUG"}
        with started(auth_python, tmp_path / "wrong.log", wrong_env) as refused:
            refused_status, answer = call(f"{refused.url}/api/items/ok-5")
            seen.append(answer)
        refused_log = refused.output()
        seen.append(refused_log)
        time.sleep(0.2)
        seen.append(repr(receiver.spans))

    # Bad settings at start: given twice, a line break inside.
    for bad in [
        {first: secrets[first], f"{first}_FILE": str(secret_file)},
        {first: secrets[first] + "\nX-Injected: 1"},
    ]:
        result = subprocess.run(
            [auth_python, "-m", "my_async_service"],
            env={**os.environ, **service_env(method, "https://api.example.com", secrets), **bad},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"error: {first}"), result.stderr
        seen.append(result.stdout + result.stderr)

    assert statuses["ok-1"] == statuses["replayed" if "replayed" in statuses else "ok-1"] == 200
    assert statuses["post"] == 201
    assert (statuses["boom"], statuses["missing"], statuses["hang"]) == (502, 404, 504)
    if method == "oauth2_client_credentials":
        assert (statuses["token-3"], statuses["token-4"]) == (502, 502)
    assert refused_status == 502
    assert "upstream refused the service's credentials" in refused_log
    assert any(span.kind == "CLIENT" for span in receiver.spans)
    everything = "\n".join(seen)
    leaked = sorted(form for form in leak_forms(secrets) | leak_forms(wrong) if form in everything)
    assert leaked == []


@pytest.mark.xdist_group("auth-oauth2_client_credentials")
def test_oauth2_one_token_for_a_burst_a_replay_after_401_and_a_failing_endpoint_held_off(
    bake: Bake, install: Install, tmp_path: Path
) -> None:
    python = install(bake(upstream_auth="oauth2_client_credentials"), DEFAULT_PYTHON)
    secrets = CANARIES["oauth2_client_credentials"]
    with fake_upstream(auth=fake_auth("oauth2_client_credentials", secrets)) as upstream:
        env = service_env("oauth2_client_credentials", upstream, secrets) | {"MAX_IN_FLIGHT": "0"}
        with started(python, tmp_path / "service.log", env) as service:
            # 200 concurrent calls at start, no token yet: one token request.
            statuses = asyncio.run(burst(service.url, [f"ok-{n}" for n in range(200)]))
            assert statuses == {200: 200}
            assert control(upstream, "/__stats")["token_requests"] == 1

            # The upstream stops taking the token: one 401, one new token, the call answered.
            control(upstream, "/__revoke", {})
            assert call(f"{service.url}/api/items/ok-x")[0] == 200
            assert control(upstream, "/__stats")["token_requests"] == 2

            # The token endpoint fails under load: about one token request a second.
            control(upstream, "/__token_replies", [{"status": 503, "json": {}}] * 100)
            control(upstream, "/__revoke", {})
            started_at = time.monotonic()
            statuses = asyncio.run(load(service.url, seconds=2.5))
            elapsed = time.monotonic() - started_at
            asked = control(upstream, "/__stats")["token_requests"] - 2
            assert set(statuses) == {502}, statuses
            assert sum(statuses.values()) > 100  # failing fast, not waiting on the endpoint
            assert 2 <= asked <= elapsed + 1.5, (asked, elapsed)
            assert call(f"{service.url}/health")[0] == 200


async def burst(url: str, ids: list[str]) -> dict[int, int]:
    """Statuses of ``GET /api/items/{id}`` for every id at once, counted."""
    counts: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(item_id: str) -> None:
            async with session.get(f"{url}/api/items/{item_id}") as response:
                await response.read()
                counts[response.status] = counts.get(response.status, 0) + 1

        await asyncio.gather(*(one(item_id) for item_id in ids))
    return counts


async def load(url: str, seconds: float, workers: int = 10) -> dict[int, int]:
    """``workers`` clients calling in a loop for ``seconds``: statuses, counted."""
    counts: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:

        async def worker(n: int) -> None:
            sent = 0
            while time.monotonic() < deadline:
                sent += 1
                async with session.get(f"{url}/api/items/load-{n}-{sent}") as response:
                    await response.read()
                    counts[response.status] = counts.get(response.status, 0) + 1

        await asyncio.gather(*(worker(n) for n in range(workers)))
    return counts
