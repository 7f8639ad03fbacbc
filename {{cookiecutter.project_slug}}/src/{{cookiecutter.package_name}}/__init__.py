"""An async HTTP service built on aiohttp: see README.md for how it fits together."""

__version__ = {{ cookiecutter.version|quoted }}
