"""Readiness and the drain: after SIGTERM the service goes on serving for
``SHUTDOWN_DRAIN_SECONDS`` while ``/health/ready`` answers 503, then shuts down gracefully.

Why: an orchestrator removes a terminating instance from its load balancer at the same time as
it sends SIGTERM, and the balancers learn it a little later. Serving through that gap, instead
of closing the listener at once, is what makes a rolling update lose no request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass

from aiohttp import web

logger = logging.getLogger(__name__)


@dataclass
class Lifecycle:
    """Where the process is in its life; ``draining`` from SIGTERM on."""

    draining: bool = False


def drain_on_sigterm(app: web.Application, lifecycle: Lifecycle, seconds: float) -> None:
    """Make SIGTERM start a drain of ``seconds``, then the graceful shutdown. A second SIGTERM,
    or SIGINT, shuts down at once."""

    async def take_over_sigterm(app: web.Application) -> None:
        # Runs at startup, after the server (web.run_app, or gunicorn's aiohttp worker) has
        # installed its own SIGTERM handler: replace it. Both stop gracefully on SIGINT.
        loop = asyncio.get_running_loop()

        def begin_drain() -> None:
            if lifecycle.draining:
                _shut_down()
                return
            lifecycle.draining = True
            logger.info("SIGTERM: draining for %gs before shutting down", seconds)
            loop.call_later(seconds, _shut_down)

        loop.add_signal_handler(signal.SIGTERM, begin_drain)

    app.on_startup.append(take_over_sigterm)


def _shut_down() -> None:
    """Start the graceful shutdown the way both servers know: SIGINT to this process."""
    os.kill(os.getpid(), signal.SIGINT)
