"""gunicorn settings for this service: ``gunicorn -c gunicorn.conf.py``.

The service's own settings apply here as under ``python -m``: ``HOST`` and ``PORT`` are the
address, SIGTERM drains for ``SHUTDOWN_DRAIN_SECONDS`` before the graceful shutdown (gunicorn's
graceful timeout is the drain plus ``SHUTDOWN_TIMEOUT``; aiohttp's worker gives in-flight
requests 95 % of it), ``ACCESS_LOG`` turns the access log on (in the app's own line format).
The number of worker processes comes from ``WEB_CONCURRENCY``, gunicorn's convention (default 1).
"""

import math
import os
import sys

from {{ cookiecutter.package_name }}.settings import Settings, SettingsError

try:
    _settings = Settings.from_env()
    workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
except (SettingsError, ValueError) as error:
    sys.exit(f"error: {error}")
if workers < 1:
    sys.exit(f"error: WEB_CONCURRENCY={workers} is invalid: expected 1 or more")

wsgi_app = "{{ cookiecutter.package_name }}.app:app_factory"
worker_class = "aiohttp.GunicornWebWorker"
bind = [f"{_settings.host}:{_settings.port}"]
# The master waits this long for workers after SIGTERM: the drain, then the shutdown.
graceful_timeout = math.ceil(_settings.shutdown_drain_seconds + _settings.shutdown_timeout)
accesslog = "-" if _settings.access_log else None
control_socket_disable = True  # no socket in ~/.gunicorn: configuration comes from here
