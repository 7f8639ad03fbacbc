"""Request ids: one per inbound request, echoed to the caller, sent upstream and logged.

The id lives in a context variable so the client and every log line of the request can read
it without it being threaded through each call.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from random import getrandbits

from multidict import istr

HEADER = "X-Request-ID"
# The same name as multidict's case-insensitive string, for header lookups and writes: a plain
# str name is case-folded into one on every request (measured: part of some 7,000 instructions a
# proxied request spent on header names).
HEADER_NAME = istr(HEADER)
MAX_LENGTH = 64
# Printable and header-safe: an id from a caller can never forge a log line or a header.
_ACCEPTED = re.compile("[A-Za-z0-9._:-]+")

current: ContextVar[str] = ContextVar("request_id", default="-")


def accepted(candidate: str | None) -> str | None:
    """``candidate`` if it is safe to reuse in a header or a log line, else None."""
    if candidate and len(candidate) <= MAX_LENGTH and _ACCEPTED.fullmatch(candidate):
        return candidate
    return None


def accept_or_generate(candidate: str | None) -> str:
    """The caller's id if it is safe to reuse, else a fresh random one."""
    if candidate and len(candidate) <= MAX_LENGTH and _ACCEPTED.fullmatch(candidate):
        return candidate
    # 128 random bits, like uuid4, without a system call: an id correlates, it guards nothing.
    return getrandbits(128).to_bytes(16).hex()  # 32 hex digits, faster than a format
