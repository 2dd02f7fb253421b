"""The recommendation API: FastAPI over the MongoDB version that serving points at.

``api.app`` builds the application and its list routes, ``api.operations`` the routes that operate it
(health, readiness, metrics, docs), ``api.store`` reads MongoDB, ``api.lists`` holds the per-request
rules (locale variants, k), ``api.schemas`` the response shapes in the OpenAPI docs. Around them:
``api.auth`` checks bearer tokens, ``api.limits`` bounds rates and request sizes, ``api.gate`` puts
the two in front of each route, and ``api.telemetry`` times every request into Prometheus metrics and
a JSON access log.
"""
