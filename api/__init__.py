"""The recommendation API: FastAPI over the MongoDB version that serving points at.

``api.app`` assembles the application from ``api.serving`` (what the routes share: the store, the
gate, the telemetry, the impression log) and the route modules — ``api.recommendations`` (a
listener's list), ``api.similar`` (similar episodes), ``api.operations`` (health, readiness, metrics,
docs) — with ``api.errors`` answering when the store cannot. ``api.store`` reads MongoDB,
``api.lists`` holds the per-request rules (locale variants, k), ``api.schemas`` the response shapes
in the OpenAPI docs. Around them:
``api.auth`` checks bearer tokens, ``api.limits`` bounds rates and request sizes, ``api.gate`` puts
the two in front of each route, and ``api.telemetry`` times every request into Prometheus metrics and
a JSON access log.
"""
