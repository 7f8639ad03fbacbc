"""gunicorn settings for this service: ``gunicorn -c gunicorn.conf.py``.

The service's own settings apply here as under ``python -m``: ``HOST`` and ``PORT`` are the
address, SIGTERM drains for ``SHUTDOWN_DRAIN_SECONDS`` before the graceful shutdown (gunicorn's
graceful timeout is the drain plus ``SHUTDOWN_TIMEOUT``; aiohttp's worker gives in-flight
requests 95 % of it), ``ACCESS_LOG`` turns the access log on (in the app's own line format).
The number of worker processes comes from ``WEB_CONCURRENCY``, gunicorn's convention (default 1).
{%- if cookiecutter.use_metrics %}
Every worker's ``/metrics`` reports the totals of all workers (see "Metrics" below).
{%- endif %}
"""

import math
import os
{%- if cookiecutter.use_metrics %}
import shutil
{%- endif %}
import sys
{%- if cookiecutter.use_metrics %}
import tempfile
from pathlib import Path
from typing import Any
{%- endif %}

{% if cookiecutter.use_tracing -%}
from {{ cookiecutter.package_name }}.observability.tracing import tracing_wanted
{% endif -%}
from {{ cookiecutter.package_name }}.settings import Settings, SettingsError

try:
    _settings = Settings.from_env()
{%- if cookiecutter.use_tracing %}
    tracing_wanted()  # refuse a bad OTEL_* value here, before any worker starts
{%- endif %}
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
keepalive = math.ceil(_settings.keepalive_timeout)  # the app applies KEEPALIVE_TIMEOUT itself too
control_socket_disable = True  # no socket in ~/.gunicorn: configuration comes from here

{%- if cookiecutter.use_metrics %}

# Metrics: prometheus-client's multiprocess mode. Workers keep their values in files in
# PROMETHEUS_MULTIPROC_DIR (yours if set, else a temporary directory removed at exit); every
# scrape sums them. It must be set before a worker imports prometheus-client, hence here.
_given_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_metrics_dir = _given_metrics_dir or tempfile.mkdtemp(prefix="metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server: Any) -> None:
    """Empty the directory: files of an earlier run would add their counts to this one's."""
    for leftover in Path(_metrics_dir).glob("*.db"):
        leftover.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its gauges stop counting (its counters and histograms still add)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _given_metrics_dir is None:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
{%- endif %}


def post_worker_init(worker: object) -> None:
    """In each worker, after the fork: log lines go through the worker's own queue and writer
    thread (``observability/logs.py``), gunicorn's error and access logs too, so a stderr that
    nobody reads can never stall a worker's event loop. Formatted as ``LOG_FORMAT`` says."""
    import logging

    from {{ cookiecutter.package_name }}.observability.logs import configure_logging

    configure_logging(_settings.log_level, _settings.log_format)
    queued = logging.getLogger().handlers
    for name in ("gunicorn.error", "gunicorn.access"):
        logging.getLogger(name).handlers[:] = queued
