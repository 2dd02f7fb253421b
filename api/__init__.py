"""The recommendation API: FastAPI over the MongoDB version that serving points at.

``api.app`` builds the application, ``api.store`` reads MongoDB, ``api.lists`` holds the
per-request rules (locale variants, k), ``api.schemas`` the response shapes in the OpenAPI docs.
"""
