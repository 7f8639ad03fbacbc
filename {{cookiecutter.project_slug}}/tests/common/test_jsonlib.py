"""The fast JSON path and the stdlib fallback must be interchangeable."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.common import jsonlib

SAMPLES = [{"id": "1", "tags": ["a", "ü"], "n": 1.5, "ok": True, "none": None}, [], "text"]


@pytest.mark.parametrize("value", SAMPLES)
def test_active_backend_and_stdlib_round_trip_identically(value: object) -> None:
    assert jsonlib.loads(jsonlib.dumps(value)) == value
    assert jsonlib.stdlib_loads(jsonlib.stdlib_dumps(value)) == value
    assert jsonlib.stdlib_loads(jsonlib.dumps(value)) == jsonlib.loads(jsonlib.stdlib_dumps(value))


@pytest.mark.parametrize("load", [jsonlib.loads, jsonlib.stdlib_loads])
def test_invalid_json_raises_value_error(load: jsonlib.Loads) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - ValueError is the contract here
        load(b"{nope")


@pytest.mark.parametrize("load", [jsonlib.loads, jsonlib.stdlib_loads])
def test_hostile_nesting_raises_value_error_not_recursion_error(load: jsonlib.Loads) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - ValueError is the contract here
        load(b"[" * 100_000 + b"]" * 100_000)
