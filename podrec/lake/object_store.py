"""How every reader and writer reaches a lake on an S3-API store that is not AWS itself.

One setting, ``PODREC_LAKE_S3_ENDPOINT``, feeds both paths to the lake: Spark's S3A filesystem
(``s3a_conf``) and delta-rs / Arrow, which read the standard ``AWS_*`` variables
(``object_store_environment``). The key pair is never a podrec setting: it stays in
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, which both read themselves.

``use_object_store`` readies a process for its lake: those variables, and the commit lock that lets
one writer at a time commit to a table there (``podrec.lake.commit_lock``).
"""

from __future__ import annotations

import os

from podrec.lake import commit_lock
from podrec.settings import LakeSettings

DEFAULT_REGION = "us-east-1"  # S3-API stores accept any region; AWS's SDKs insist on one


def s3a_conf(lake: LakeSettings) -> dict[str, str]:
    """Spark settings for S3A on the configured endpoint (path-style: such stores rarely have
    per-bucket DNS names); none for AWS itself or a local lake."""
    if not (lake.on_object_store and lake.s3_endpoint):
        return {}
    return {
        "spark.hadoop.fs.s3a.endpoint": lake.s3_endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": os.environ.get("AWS_REGION", DEFAULT_REGION),
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(lake.s3_endpoint.startswith("https:")).lower(),
    }


def object_store_environment(lake: LakeSettings) -> dict[str, str]:
    """The ``AWS_*`` variables delta-rs and Arrow need for the endpoint. delta-rs commits there by
    put-then-rename, which S3 cannot make atomic: it is allowed (``AWS_S3_ALLOW_UNSAFE_RENAME``) because
    podrec's commit lock already lets one writer at a time commit to a table, as it does for Spark's
    single-driver S3 log store."""
    if not (lake.on_object_store and lake.s3_endpoint):
        return {}
    env = {
        "AWS_ENDPOINT_URL": lake.s3_endpoint,
        "AWS_REGION": DEFAULT_REGION,
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }
    if lake.s3_endpoint.startswith("http:"):
        env["AWS_ALLOW_HTTP"] = "true"
    return env


def use_object_store(lake: LakeSettings) -> None:
    """Ready this process for ``lake``: those variables into its environment (and its children's; values
    already set win, so an operator's own choice is kept), and its commit lock configured."""
    for name, value in object_store_environment(lake).items():
        os.environ.setdefault(name, value)
    commit_lock.configure(lake)
