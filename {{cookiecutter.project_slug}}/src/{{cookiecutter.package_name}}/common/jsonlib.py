"""JSON encoding and decoding: orjson when the ``speedups`` extra is installed, else the stdlib.

Chosen once at import so that no request pays for the choice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeAlias

JSONValue: TypeAlias = dict[str, "JSONValue"] | list["JSONValue"] | str | int | float | bool | None
Dumps: TypeAlias = Callable[[object], bytes]
Loads: TypeAlias = Callable[[bytes], JSONValue]


def stdlib_dumps(value: object) -> bytes:
    """Compact UTF-8 JSON, the same bytes orjson would produce for plain data."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def stdlib_loads(data: bytes) -> JSONValue:
    """Parse JSON; raises ValueError on any unusable input, like orjson."""
    try:
        value: JSONValue = json.loads(data)
    except RecursionError:  # hostile nesting: a client error, not a server crash
        raise ValueError("JSON nested too deeply") from None
    return value


def _fastest_codec() -> tuple[str, Dumps, Loads]:
    try:
        import orjson
    except ImportError:  # pragma: no cover - depends on the installed extras
        return "json", stdlib_dumps, stdlib_loads
    return "orjson", orjson.dumps, orjson.loads


BACKEND, dumps, loads = _fastest_codec()
