"""What the service tells its operators: log lines, the access log and how a request is named
{%- if cookiecutter.use_metrics %};
Prometheus metrics{% endif %}{% if cookiecutter.use_tracing %};
OpenTelemetry tracing{% endif %}.

It may import ``settings``, ``clients`` (the seams it attaches to) and ``common``; never the
HTTP side or the app, which call it.
"""
