"""The default service against a real json-server 0.17 (the Example API's conventions, and what
the generated README tells users to try it with): it creates, reads, lists across pages with
filters, updates and deletes items. json-server is installed by ./dev (tests/node/)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ci_tools import NODE_TOOLS_BIN, tool, tools_env
from conftest import clean_environment
from support.processes import free_port, stop, wait_until_healthy

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("json-server")]
ITEMS = [{"id": n, "name": f"n{n}", "color": "red" if n % 2 else "blue"} for n in range(1, 251)]


def call(url: str, method: str = "GET", body: object = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw, status = answer.read(), answer.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    return status, json.loads(raw) if raw else None


def call_or_none(url: str) -> int | None:
    try:
        return call(url)[0]
    except OSError:
        return None


@pytest.fixture
def json_server(tmp_path: Path) -> Iterator[str]:
    """json-server 0.17 on a free loopback port, serving 250 items from its own db.json."""
    (tmp_path / "db.json").write_text(json.dumps({"items": ITEMS}), encoding="utf-8")
    port = free_port()
    command = [tool("json-server", NODE_TOOLS_BIN), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--quiet", "db.json"],
        cwd=tmp_path,
        env=tools_env(),  # node first on PATH: json-server is a node script
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while call_or_none(f"{url}/items/1") != 200:
            assert process.poll() is None, "json-server exited"
            assert time.monotonic() < deadline, "json-server did not answer within 30 s"
            time.sleep(0.2)
        yield url
    finally:
        stop(process)


def test_the_default_service_does_everything_against_json_server(
    default_project: Path, default_python: Path, json_server: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {**clean_environment(), "PORT": str(port), "UPSTREAM_BASE_URL": json_server}
    service = subprocess.Popen(
        [default_python, "-m", "my_async_service"],
        cwd=default_project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api/items"
    try:
        wait_until_healthy(service, f"http://127.0.0.1:{port}")
        read = call(f"{api}/7")
        listed = call(f"{api}?color=red&limit=110")
        everything = call(f"{api}?limit=1000")
        created = call(api, "POST", {"name": "lamp", "color": "green"})
        new_id = created[1]["id"]
        updated = call(f"{api}/{new_id}", "PATCH", {"color": "red"})
        by_name = call(f"{api}?name=lamp")
        deleted = call(f"{api}/{new_id}", "DELETE")
        gone = call(f"{api}/{new_id}")
    finally:
        stop(service)

    assert read == (200, {"id": 7, "name": "n7", "color": "red"})
    assert listed[0] == 200
    assert [item["id"] for item in listed[1]["items"]] == list(range(1, 221, 2))  # 2 pages
    assert len(everything[1]["items"]) == 250  # three pages of 100, the last one short
    assert created == (201, {"id": 251, "name": "lamp", "color": "green"})
    assert updated == (200, {"id": 251, "name": "lamp", "color": "red"})
    assert by_name == (200, {"items": [{"id": 251, "name": "lamp", "color": "red"}]})
    assert deleted == (204, None)
    assert gone[0] == 404
