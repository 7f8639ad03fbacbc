"""The HTTP side: routes and handlers, the middleware, JSON answers, request validation, the
OpenAPI document, load shedding, the probes' lifecycle and the app's typed keys.

It may import ``observability``, ``settings``, ``clients`` and ``common``; never the app.
"""
