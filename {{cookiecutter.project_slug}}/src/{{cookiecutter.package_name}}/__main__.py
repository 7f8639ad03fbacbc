"""Command-line entry point: read settings, configure logging, serve until a signal."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from .app import serving_app
from .observability.logs import configure_logging
from .settings import Settings, SettingsError

EXIT_BAD_SETTINGS = 2


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when the ``speedups`` extra is installed, else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - depends on the installed extras
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def log_startup(message: str) -> None:
    """aiohttp's banner as one log line: "Running on URL", without its frame of ``=`` or the
    "(Press CTRL+C to quit)" line meant for a terminal."""
    logging.getLogger(__package__).info("%s", message.splitlines()[0].strip("= "))


def main() -> int:
    """Run the service; SIGINT or SIGTERM stops it gracefully with exit status 0 (SIGTERM after
    the drain, when one is set)."""
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level, settings.log_format)
        app = serving_app(settings)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
        print=log_startup,
        loop=new_event_loop(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
