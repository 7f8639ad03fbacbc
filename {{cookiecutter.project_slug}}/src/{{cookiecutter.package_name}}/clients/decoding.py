"""Answers into what callers asked for: a pydantic model (or any type pydantic validates),
validated straight from the raw bytes, or plain JSON data.

A mismatch is an ``UpstreamSchemaError`` that names where the answer is wrong, never what it
holds. One decoder per type is made on first use and kept: a ``TypeAdapter`` is costly to
build and cheap to use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError

from ..common.errors import UpstreamError, UpstreamSchemaError, UpstreamUnavailableError
from ..common.jsonlib import JSONValue, loads

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Decoder(Protocol[T_co]):
    """Turns a raw answer body into what the caller asked for."""

    def decode(self, body: bytes) -> T_co: ...


@dataclass(frozen=True, slots=True, eq=False)
class _ModelDecoder(Generic[T]):
    """Validates raw JSON bytes straight into ``T`` with one ``TypeAdapter`` (no dict between)."""

    adapter: TypeAdapter[T]
    name: str

    def decode(self, body: bytes) -> T:
        try:
            # The adapter's own validator, called directly: TypeAdapter.validate_json adds
            # Python-level checks worth 0.1 µs a call that are of no use here.
            value: T = self.adapter.validator.validate_json(body)
        except ValidationError as error:
            raise schema_error(error, self.name) from None
        return value


class _JSONDecoder:
    """Plain JSON data, for callers that want no model."""

    def decode(self, body: bytes) -> JSONValue:
        try:
            return loads(body)
        except ValueError:
            raise UpstreamUnavailableError("upstream answered with invalid JSON") from None


class Ignored:
    """The model of an answer nobody reads (a DELETE's): it is not even parsed."""


class _IgnoringDecoder:
    def decode(self, body: bytes) -> Ignored:
        return _IGNORED


_IGNORED = Ignored()
JSON_DATA = _JSONDecoder()
_DECODERS: dict[object, Decoder[Any]] = {Ignored: _IgnoringDecoder()}


def decoder_for(model: type[T]) -> Decoder[T]:
    """The decoder of ``model``, made on first use."""
    decoder = _DECODERS.get(model)
    if decoder is None:
        name = getattr(model, "__name__", repr(model))
        decoder = _DECODERS[model] = _ModelDecoder(TypeAdapter(model), name)
    return decoder


def schema_error(error: ValidationError, name: str) -> UpstreamError:
    """Name where the answer is wrong, never what it holds: pydantic's own text quotes the input
    (which may be personal data), so only the locations of the first few errors are given."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    if problems and problems[0]["type"] == "json_invalid":
        return UpstreamUnavailableError("upstream answered with invalid JSON")
    shown = [".".join(map(str, problem["loc"])) or "(the whole answer)" for problem in problems]
    more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
    return UpstreamSchemaError(
        f"upstream answer is not a valid {name}: at {', '.join(shown[:5])}{more}"
    )
