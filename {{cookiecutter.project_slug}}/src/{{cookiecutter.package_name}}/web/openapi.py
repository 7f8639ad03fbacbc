"""The service's OpenAPI 3.1 description, served at ``GET /openapi.json``.

Written by hand, from the same constants the handlers validate with, and held to the app by
the tests: every route the router serves is in it, and schemathesis fuzzes the app against
it. Requests aiohttp's HTTP parser refuses (plain-text 400, before the app runs) are outside.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .. import __version__
from ..clients import {{ cookiecutter.__upstream_module }}
from ..common import request_ids
from .validation import (
    DEFAULT_LIST_LIMIT,
    IDEMPOTENCY_KEY_PATTERN,
    ITEM_ID_PATTERN,
    MAX_BATCH_SIZE,
    MAX_FILTER_LENGTH,
    MAX_INTEGER_ID,
    MAX_ITEM_ID_LENGTH,
    MAX_LIST_LIMIT,
)

JSON = "application/json"
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
    "additionalProperties": False,
}
ITEM_ID = {"type": "string", "pattern": ITEM_ID_PATTERN, "maxLength": MAX_ITEM_ID_LENGTH}
# An id as a batch takes it: a safe path segment, or an integer JSON parsers all read exactly.
BATCH_ID = {"anyOf": [ITEM_ID, {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER_ID}]}
ANY_JSON: dict[str, Any] = {}  # whatever the upstream answers
ITEM = {"$ref": "#/components/schemas/Item"}
MODELS: dict[str, type[BaseModel]] = {
    "Item": {{ cookiecutter.__upstream_module }}.Item,
    "NewItem": {{ cookiecutter.__upstream_module }}.NewItem,
    "ItemChanges": {{ cookiecutter.__upstream_module }}.ItemChanges,
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Sent upstream with every attempt of this write (a new one when left out)",
    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
}


def model_schemas() -> dict[str, Any]:
    """The schemas of the items the service reads and writes, from the client's models: the
    document cannot drift from what is validated. Answers are described as serialized."""
    return {
        name: model.model_json_schema(
            ref_template="#/components/schemas/{model}",
            mode="serialization" if name == "Item" else "validation",
        )
        for name, model in MODELS.items()
    }


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A response: JSON (the error shape unless given) with the request id header."""
    return {
        "description": description,
        "headers": {request_ids.HEADER: {"$ref": "#/components/headers/RequestId"}},
        "content": {JSON: {"schema": ERROR if schema is None else schema}},
    }


_BATCH_RESULT = {
    "oneOf": [
        {
            "type": "object",
            "required": ["id", "item"],
            "properties": {"id": BATCH_ID, "item": ITEM},
            "additionalProperties": False,
        },
        {
            "type": "object",
            "required": ["id", "error", "status"],
            "properties": {
                "id": BATCH_ID,
                "error": {"type": "string"},
                "status": {"type": "integer"},
            },
            "additionalProperties": False,
        },
    ]
}


def _refused(description: str) -> dict[str, Any]:
    """A 503 of an ``/api/`` route: ``Retry-After`` (whole seconds) comes with load shedding."""
    answer = _answer(description)
    answer["headers"]["Retry-After"] = {
        "description": "Seconds to wait before trying again (when overloaded)",
        "schema": {"type": "integer", "minimum": 0},
    }
    return answer


def _status(value: str) -> dict[str, Any]:
    """A probe's body: ``{"status": value}``."""
    return {"type": "object", "required": ["status"], "properties": {"status": {"const": value}}}


_HEALTHY = _status("ok")
_HEALTH_OPERATION = {
    "tags": ["operations"],
    "summary": "Liveness: answers without touching the upstream",
    "responses": {"200": _answer("The process serves", _HEALTHY)},
}
TITLE = {{ cookiecutter.project_name|quoted }}


def item_id_parameter(constraints: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``item_id`` path parameter, with any further constraints of one route."""
    schema = ITEM_ID | (constraints or {})
    return {"name": "item_id", "in": "path", "required": True, "schema": schema}


def upstream_read(
    summary: str, *parameters: dict[str, Any], answer: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A GET whose answer is the upstream's JSON (``answer``: its schema, else anything), with
    every status an upstream call can give."""
    return {
        "tags": ["items"],
        "summary": summary,
        "parameters": list(parameters),
        "responses": {
            "200": _answer("The upstream's JSON", ANY_JSON if answer is None else answer),
            "400": _answer("An id is not a safe path segment"),
            "404": _answer("The upstream has no such item"),
            "502": _answer("The upstream failed or answered unusably"),
            "503": _refused(
                "Overloaded (MAX_IN_FLIGHT), or the circuit breaker is open: the upstream was"
                " not called"
            ),
            "504": _answer("The upstream did not answer in time"),
        },
    }


# /api/items/batch is the batch route's path: the id "batch" gets 405 there.
ITEM_PATH_ID = item_id_parameter({"not": {"const": "batch"}})


def _get_item() -> dict[str, Any]:
    operation = upstream_read("One item", ITEM_PATH_ID, answer=ITEM)
    operation["responses"]["405"] = _answer("The id `batch`: that path takes only POST")
    return operation


def _list_items() -> dict[str, Any]:
    filters = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": f"Only items whose {name} is exactly this",
            "schema": {"type": "string", "maxLength": MAX_FILTER_LENGTH},
        }
        for name in {{ cookiecutter.__upstream_module }}.ITEM_FILTERS
    ]
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Items at most; fewer when the upstream has no more",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_LIST_LIMIT,
            "default": DEFAULT_LIST_LIMIT,
        },
    }
    answer = {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": ITEM}},
        "additionalProperties": False,
    }
    operation = upstream_read("Items, filtered, in upstream order", *filters, limit, answer=answer)
    operation["responses"]["400"] = _answer("An unknown or repeated parameter, or a bad limit")
    del operation["responses"]["404"]
    return operation


def upstream_write(
    summary: str, parameters: list[dict[str, Any]], body: str | None, success: dict[str, Any]
) -> dict[str, Any]:
    """A write forwarded upstream, with every status it can give."""
    operation: dict[str, Any] = {
        "tags": ["items"],
        "summary": summary,
        "parameters": parameters,
        "responses": success
        | {
            "400": _answer("A bad id, Idempotency-Key or body (each wrong field named)"),
            "404": _answer("The upstream has no such item"),
            "502": _answer("The upstream failed or answered unusably"),
            "503": _refused(
                "Overloaded (MAX_IN_FLIGHT), or the circuit breaker is open: the upstream was"
                " not called"
            ),
            "504": _answer("The upstream did not answer in time (the write may have happened)"),
        },
    }
    if body is not None:
        schema = {"$ref": f"#/components/schemas/{body}"}
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
        operation["responses"] |= {
            "408": _answer("The body did not arrive within REQUEST_BODY_TIMEOUT"),
            "413": _answer("The body is larger than MAX_BODY_BYTES"),
            "415": _answer("The body is not sent as application/json"),
        }
    return operation


def _item_paths() -> dict[str, Any]:
    created = {"201": _answer("The item as created, with the id the upstream chose", ITEM)}
    updated = {"200": _answer("The whole item after the change", ITEM)}
    deleted = {
        "204": {
            "description": "Deleted",
            "headers": {request_ids.HEADER: {"$ref": "#/components/headers/RequestId"}},
        }
    }
    create = upstream_write("Create an item", [IDEMPOTENCY_KEY], "NewItem", created)
    del create["responses"]["404"]
    update = upstream_write(
        "Change some fields of an item", [ITEM_PATH_ID, IDEMPOTENCY_KEY], "ItemChanges", updated
    )
    delete = upstream_write("Delete an item", [ITEM_PATH_ID], None, deleted)
    for operation in (update, delete):
        operation["responses"]["405"] = _answer("The id `batch`: that path takes only POST")
    return {
        "/api/items": {"get": _list_items(), "post": create},
        "/api/items/{item_id}": {
            "get": _get_item(),
            "patch": update,
            "delete": delete,
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI document of this service."""
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": __version__},
        "tags": [
            {"name": "items", "description": "Items from the upstream API"},
            {"name": "operations", "description": "For orchestrators and tooling"},
        ],
        "paths": {
            **_item_paths(),
            "/api/items/batch": {
                "post": {
                    "tags": ["items"],
                    "summary": "Many items at once, in input order, with per-item errors inline",
                    "requestBody": {
                        "required": True,
                        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Batch"}}},
                    },
                    "responses": {
                        "200": _answer(
                            "One result per id, in order",
                            {
                                "type": "object",
                                "required": ["results"],
                                "properties": {
                                    "results": {"type": "array", "items": _BATCH_RESULT}
                                },
                            },
                        ),
                        "400": _answer("The body is not valid JSON of the documented shape"),
                        "408": _answer("The body did not arrive within REQUEST_BODY_TIMEOUT"),
                        "413": _answer("The body is larger than MAX_BODY_BYTES"),
                        "415": _answer("The body is not sent as application/json"),
                        "503": _refused("Overloaded (MAX_IN_FLIGHT): the body was not read"),
                    },
                }
            },
            # HEAD /health is served too: aiohttp answers HEAD for it as GET, without a body.
            "/health": {"get": _HEALTH_OPERATION},
            "/health/live": {"get": _HEALTH_OPERATION},
            "/health/ready": {
                "get": {
                    "tags": ["operations"],
                    "summary": "Readiness: 503 from SIGTERM on, while the service drains",
                    "responses": {
                        "200": _answer("Send work here", _status("ready")),
                        "503": _answer("Draining: send no new work", _status("draining")),
                    },
                }
            },
{%- if cookiecutter.use_metrics %}
            "/metrics": {
                "get": {
                    "tags": ["operations"],
                    "summary": "Prometheus metrics, summed over all worker processes",
                    "responses": {
                        "200": {
                            "description": "The Prometheus text format",
                            "headers": {
                                request_ids.HEADER: {"$ref": "#/components/headers/RequestId"}
                            },
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
{%- endif %}
            "/openapi.json": {
                "get": {
                    "tags": ["operations"],
                    "summary": "This document",
                    "responses": {"200": _answer("The OpenAPI document", {"type": "object"})},
                }
            },
        },
        "components": {
            "schemas": {
                "Batch": {
                    "type": "object",
                    "required": ["ids"],
                    "properties": {
                        "ids": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_BATCH_SIZE,
                            "items": BATCH_ID,
                        }
                    },
                },
                "Error": ERROR,
                **model_schemas(),
            },
            "headers": {
                "RequestId": {
                    "description": "The request's id: the caller's X-Request-ID if safe, else new",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
                }
            },
        },
    }
