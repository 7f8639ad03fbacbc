"""The Redis cache against a real Redis: the one at ``REDIS_URL``.

CI starts one and sets ``REDIS_URL`` (see the CI configuration); there this test must run, so
a missing ``REDIS_URL`` fails it. Elsewhere it is skipped unless you point it at a Redis, for
example ``REDIS_URL=redis://localhost:6379/15 pytest tests/test_redis_cache.py`` (it only
writes keys under its own prefix, and deletes them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from {{ cookiecutter.package_name }}.clients.caching import KEY_PREFIX, RedisCache
from {{ cookiecutter.package_name }}.clients.core import MISS


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail("REDIS_URL is not set: CI must start a Redis for the cache's tests")
    pytest.skip("set REDIS_URL to run the Redis cache against a real Redis")


@pytest.fixture
async def namespace(redis_url: str) -> AsyncIterator[str]:
    """A namespace of this test's own; its keys are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex}"
    yield name
    redis = Redis.from_url(redis_url)
    keys = [key async for key in redis.scan_iter(f"{KEY_PREFIX}{name}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_an_answer_written_by_one_process_is_read_by_another(
    redis_url: str, namespace: str
) -> None:
    writer = RedisCache.open(redis_url, ttl=30.0, timeout=1.0, namespace=namespace)
    reader = RedisCache.open(redis_url, ttl=30.0, timeout=1.0, namespace=namespace)
    writer.store("/items/7", b'{"id":"7"}', None)
    writer.store("/items/8", b'{"id":"8"}', "no-store")
    await writer.close()  # waits for the writes

    assert await reader.lookup("/items/7") == b'{"id":"7"}'
    assert await reader.lookup("/items/8") is MISS
    await reader.close()
