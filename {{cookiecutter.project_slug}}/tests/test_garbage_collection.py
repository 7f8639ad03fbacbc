"""The garbage collector is set for serving once the served app has started, not before."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from pytest_aiohttp import AiohttpServer

from {{ cookiecutter.package_name }}.app import serving_app
from {{ cookiecutter.package_name }}.garbage_collection import YOUNG_GENERATION_THRESHOLD
from {{ cookiecutter.package_name }}.settings import Settings


@pytest.fixture
def restore_collector() -> Iterator[None]:
    """Give the test process its collector back as it was: frozen objects and thresholds."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_collector")
async def test_startup_freezes_what_exists_and_spaces_out_young_collections(
    aiohttp_server: AiohttpServer, settings: Settings
) -> None:
    _, middle, old = gc.get_threshold()
    gc.set_threshold(700, middle, old)  # the interpreter's default
    app = serving_app(settings)
    assert gc.get_threshold()[0] == 700  # building the app changes nothing yet
    gc.unfreeze()

    await aiohttp_server(app, host="127.0.0.1")

    # Startup froze what existed (modules, the app: thousands of objects) and spaced out
    # young collections.
    assert gc.get_freeze_count() > 1000
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, middle, old)
