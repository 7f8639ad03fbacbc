"""Clients for the third-party HTTP APIs this service calls: one module per upstream."""

from .{{ cookiecutter.__upstream_module }} import {{ cookiecutter.__upstream_class }}

__all__ = ["{{ cookiecutter.__upstream_class }}"]
