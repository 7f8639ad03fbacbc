"""Clients for the third-party HTTP APIs this service calls, and everything they are built from:
the core (every method, pool, time budget, retries, size cap, pagination, typed errors), the
decoding of answers into models, the encoding of requests, coalescing, the circuit breaker, the
response cache and one module per upstream (its models and endpoints).

It may import only ``common``: never settings, the HTTP side, observability or the app, so it
can be lifted into another service with ``common``. Metrics and tracing attach through the
core's ``Instruments``; the service maps its settings to a policy in ``upstreams.py``.
"""

from .{{ cookiecutter.__upstream_module }} import {{ cookiecutter.__upstream_class }}

__all__ = ["{{ cookiecutter.__upstream_class }}"]
