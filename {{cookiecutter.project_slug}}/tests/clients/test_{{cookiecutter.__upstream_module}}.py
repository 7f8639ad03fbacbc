"""The client's whole surface against the fake Example API: typed reads, listings over pages,
writes that are never duplicated, and the cache kept honest by writes. Each test counts what
the upstream received."""

from __future__ import annotations

import asyncio
import socket

import pytest

from {{ cookiecutter.package_name }}.clients import (
    {{ cookiecutter.__upstream_class }},
    {{ cookiecutter.__upstream_module }},
)
from {{ cookiecutter.package_name }}.clients.core import Instruments, UpstreamPolicy
from {{ cookiecutter.package_name }}.common.errors import (
    UpstreamNotFoundError,
    UpstreamSchemaError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

from ..fake_upstream import FakeUpstream, Reply
from .test_core import DictCache

Client = {{ cookiecutter.__upstream_class }}
Item = {{ cookiecutter.__upstream_module }}.Item
ItemChanges = {{ cookiecutter.__upstream_module }}.ItemChanges
NewItem = {{ cookiecutter.__upstream_module }}.NewItem
NO_WAIT = UpstreamPolicy(timeout=2.0, retries=2, retry_backoff=0.0)
KEYED = UpstreamPolicy(timeout=2.0, retries=2, retry_backoff=0.0, idempotency_keys=True)


async def listing(
    api: Client, page_size: int = 3, max_pages: int = 10, **filters: str
) -> list[Item]:
    """Every item of ``GET /items``, page after page."""
    found: list[Item] = []
    async for page in api.list_items(filters, page_size=page_size, max_pages=max_pages):
        found.extend(page)
    return found


async def test_an_item_is_typed_keeps_its_id_type_and_passes_extra_fields_through(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.add({"id": 7, "name": "seven", "color": "red", "tags": ["a"]})

    async with Client.open(fake_upstream.base_url, NO_WAIT) as api:
        item = await api.get_item("7")

    assert isinstance(item, Item)
    assert (item.id, item.name) == (7, "seven")
    assert item.model_dump() == {"id": 7, "name": "seven", "color": "red", "tags": ["a"]}


async def test_an_answer_of_the_wrong_shape_is_a_schema_error_naming_fields_not_values(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.add({"id": 7, "name": ["secret@example.com"]})

    async with Client.open(fake_upstream.base_url, NO_WAIT) as api:
        with pytest.raises(UpstreamSchemaError) as raised:
            await api.get_item("7")

    assert str(raised.value) == "upstream answer is not a valid Item: at name"
    assert raised.value.status == 502
    assert fake_upstream.methods == ["GET"]  # never retried: the next answer would be the same


async def test_a_listing_follows_next_links_across_pages_with_filters(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.add(*({"id": n, "name": f"n{n}", "color": "red"} for n in range(1, 8)))
    fake_upstream.add({"id": 8, "name": "blue one", "color": "blue"})

    async with Client.open(fake_upstream.base_url, NO_WAIT) as api:
        found = await listing(api, page_size=3, color="red")

    assert [item.id for item in found] == [1, 2, 3, 4, 5, 6, 7]
    assert fake_upstream.queries == [
        "_limit=3&_page=1&color=red",
        "_limit=3&_page=2&color=red",
        "_limit=3&_page=3&color=red",
    ]


async def test_a_relative_next_link_among_several_is_followed(fake_upstream: FakeUpstream) -> None:
    links = '</items?_page=1>; rel="first", </items?_page=2>; rel="next", </x>; rel="last"'
    fake_upstream.queue(Reply(json=[{"id": 1, "name": "a"}], headers={"Link": links}))
    fake_upstream.queue(Reply(json=[{"id": 2, "name": "b"}]))

    async with Client.open(fake_upstream.base_url, NO_WAIT) as api:
        found = await listing(api)

    assert [item.id for item in found] == [1, 2]
    assert fake_upstream.queries[1] == "_page=2"


@pytest.mark.parametrize(
    "elsewhere",
    ["http://other.invalid/items?_page=2", "https://{host}/items?_page=2", "http://{host}:1/x"],
)
async def test_a_next_page_on_another_origin_is_refused(
    fake_upstream: FakeUpstream, elsewhere: str
) -> None:
    host = fake_upstream.base_url.removeprefix("http://").rpartition(":")[0]
    link = f'<{elsewhere.format(host=host)}>; rel="next"'
    fake_upstream.queue(Reply(json=[{"id": 1, "name": "a"}], headers={"Link": link}))

    async with Client.open(fake_upstream.base_url, NO_WAIT) as api:
        with pytest.raises(UpstreamUnavailableError, match="another origin"):
            await listing(api)

    assert fake_upstream.methods == ["GET"]


async def test_a_listing_longer_than_its_page_bound_is_refused(fake_upstream: FakeUpstream) -> None:
    fake_upstream.add(*({"id": n, "name": f"n{n}"} for n in range(1, 8)))

    async with Client.open(fake_upstream.base_url, NO_WAIT) as api:
        with pytest.raises(UpstreamUnavailableError, match="more than 2 pages"):
            await listing(api, page_size=3, max_pages=2)

    assert len(fake_upstream.methods) == 2


@pytest.mark.looptime
async def test_a_whole_listing_shares_one_time_budget(fake_upstream: FakeUpstream) -> None:
    fake_upstream.add(*({"id": n, "name": f"n{n}"} for n in range(1, 8)))
    next_page = {"Link": '</items>; rel="next"'}
    fake_upstream.queue(Reply(json=[{"id": 1, "name": "a"}], headers=next_page))
    fake_upstream.queue(Reply(hang=True))
    budget = UpstreamPolicy(timeout=0.2, retries=0)

    async with Client.open(fake_upstream.base_url, budget) as api:
        with pytest.raises(UpstreamTimeoutError):
            await listing(api)

    assert len(fake_upstream.methods) == 2


async def test_create_update_delete_items(fake_upstream: FakeUpstream) -> None:
    async with Client.open(fake_upstream.base_url, NO_WAIT) as api:
        created = await api.create_item(NewItem(name="lamp", color="red"))  # type: ignore[call-arg]
        updated = await api.update_item(str(created.id), ItemChanges(color="blue"))  # type: ignore[call-arg]
        await api.delete_item(str(created.id))
        with pytest.raises(UpstreamNotFoundError):
            await api.get_item(str(created.id))

    assert created.model_dump() == {"id": 1, "name": "lamp", "color": "red"}
    assert updated.model_dump() == {"id": 1, "name": "lamp", "color": "blue"}
    assert fake_upstream.methods == ["POST", "PATCH", "DELETE", "GET"]
    assert fake_upstream.bodies[1] == b'{"color":"blue"}'  # only the fields that change
    assert fake_upstream.items == {}


async def test_with_keys_declared_a_503_then_201_is_two_posts_with_one_key(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.queue(Reply(status=503))

    async with Client.open(fake_upstream.base_url, KEYED) as api:
        created = await api.create_item(NewItem(name="lamp"), idempotency_key="key-1")

    assert created.name == "lamp"
    assert fake_upstream.methods == ["POST", "POST"]
    assert fake_upstream.idempotency_keys == ["key-1", "key-1"]
    assert len(fake_upstream.items) == 1


async def test_a_key_is_minted_once_per_call_and_sent_on_every_attempt(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.queue(Reply(status=503), Reply(status=502))

    async with Client.open(fake_upstream.base_url, KEYED) as api:
        await api.create_item(NewItem(name="lamp"))
        await api.create_item(NewItem(name="desk"))

    first, second, third, fourth = fake_upstream.idempotency_keys
    assert first is not None
    assert first == second == third != fourth


async def test_without_keys_declared_a_503_to_a_post_is_not_sent_again(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.queue(Reply(status=503))

    async with Client.open(fake_upstream.base_url, NO_WAIT) as api:
        with pytest.raises(UpstreamUnavailableError) as raised:
            await api.create_item(NewItem(name="lamp"))

    assert raised.value.status == 502
    assert fake_upstream.methods == ["POST"]


async def test_without_keys_a_post_whose_connection_dropped_after_sending_is_not_resent(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.queue(Reply(reset=True))

    async with Client.open(fake_upstream.base_url, NO_WAIT) as api:
        with pytest.raises(UpstreamUnavailableError, match="connection to the upstream failed"):
            await api.create_item(NewItem(name="lamp"))

    assert fake_upstream.methods == ["POST"]
    assert fake_upstream.bodies == [b'{"name":"lamp"}']


@pytest.mark.looptime
async def test_without_keys_a_timed_out_post_is_a_504_and_not_resent(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.queue(Reply(hang=True))
    impatient = UpstreamPolicy(timeout=0.2, retries=2, retry_backoff=0.0)

    async with Client.open(fake_upstream.base_url, impatient) as api:
        with pytest.raises(UpstreamTimeoutError):
            await api.create_item(NewItem(name="lamp"))

    assert fake_upstream.methods == ["POST"]


@pytest.mark.parametrize("status", [409, 422])
async def test_a_conflict_or_refusal_of_a_keyed_write_is_final(
    fake_upstream: FakeUpstream, status: int
) -> None:
    fake_upstream.queue(Reply(status=status))

    async with Client.open(fake_upstream.base_url, KEYED) as api:
        with pytest.raises(UpstreamUnavailableError, match=str(status)):
            await api.create_item(NewItem(name="lamp"))

    assert fake_upstream.methods == ["POST"]


async def test_a_post_that_could_not_connect_is_tried_again_even_without_keys() -> None:
    with socket.socket() as unused:  # a port nobody listens on: every connection is refused
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    attempts: list[str] = []

    class Counting:
        def attempt_finished(self, upstream: str, outcome: str, seconds: float) -> None:
            attempts.append(outcome)

        def retrying(self, upstream: str) -> None: ...

        def circuit_changed(self, upstream: str, is_open: bool) -> None: ...

        def cache_used(self, upstream: str, hit: bool) -> None: ...
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}

        def token_requested(self, upstream: str, outcome: str) -> None: ...
{%- endif %}

    async with Client.open(f"http://127.0.0.1:{port}", NO_WAIT, Instruments(Counting())) as api:
        with pytest.raises(UpstreamUnavailableError, match="could not connect"):
            await api.create_item(NewItem(name="lamp"))

    assert attempts == ["error", "error", "error"]  # the first and upstream retries=2


async def test_a_delete_whose_resent_attempt_finds_nothing_counts_as_done(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.queue(Reply(status=503))  # as if the first DELETE landed and its answer was lost

    async with Client.open(fake_upstream.base_url, NO_WAIT) as api:
        await api.delete_item("7")
        with pytest.raises(UpstreamNotFoundError):
            await api.delete_item("7")  # a 404 to a first attempt is one

    assert fake_upstream.methods == ["DELETE", "DELETE", "DELETE"]


async def test_extra_headers_never_replace_the_ones_the_core_owns(
    fake_upstream: FakeUpstream,
) -> None:
    async with Client.open(fake_upstream.base_url, NO_WAIT) as api:
        with pytest.raises(ValueError, match="Idempotency-Key"):
            await api.request("POST", "items", model=Item, headers={"Idempotency-Key": "mine"})
        answer = await api.request(
            "POST", "items", model=Item, json={"name": "a"}, headers={"X-Tenant": "t1"}
        )

    assert (answer.status, answer.body.name) == (201, "a")
    assert answer.headers["Content-Type"].startswith("application/json")
    assert fake_upstream.methods == ["POST"]


async def test_a_write_makes_the_cache_forget_the_item_and_skips_reads_in_flight(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.add({"id": 1, "name": "old"})
    cache = DictCache()
    cached = UpstreamPolicy(retries=0, cache=lambda name: cache)

    async with Client.open(fake_upstream.base_url, cached) as api:
        assert (await api.get_item("1")).name == "old"
        fake_upstream.queue(Reply(json={"id": 1, "name": "old"}, hang=True))
        fake_upstream.arrived.clear()
        in_flight = asyncio.create_task(api.get_item("1"))  # not a cache hit: see below
        cache.kept.clear()
        await fake_upstream.arrived.wait()
        await api.update_item("1", ItemChanges(name="new"))
        fake_upstream.release()
        assert (await in_flight).name == "old"  # it started before the write
        assert (await api.get_item("1")).name == "new"

    item_url = f"{fake_upstream.base_url}/items/1"
    assert cache.forgotten == [item_url]
    assert fake_upstream.methods == ["GET", "GET", "PATCH", "GET"]


async def test_listings_are_never_cached(fake_upstream: FakeUpstream) -> None:
    fake_upstream.add({"id": 1, "name": "one"})
    cache = DictCache()
    cached = UpstreamPolicy(retries=0, cache=lambda name: cache)

    async with Client.open(fake_upstream.base_url, cached) as api:
        first, second = await listing(api), await listing(api)

    assert first == second == [Item(id=1, name="one")]
    assert cache.kept == {}
    assert fake_upstream.methods == ["GET", "GET"]
