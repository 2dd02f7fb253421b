"""podrec's library: plain Python that knows nothing of Dagster.

``settings`` (the one settings tree), ``language`` (locales and language variants), and one
package per part of the system: ``lake`` (paths, Delta reads and writes, DuckDB views, Spark
configuration, table schemas), ``ingest`` (the event wire format, Kafka → bronze, producers,
the simulator, log import), ``content`` (episode sources, language variants, audio,
transcripts, embeddings, similarity), ``recsys`` (engagement, ALS, the hybrid rules, scoring,
evaluation, A/B), ``serving`` (the MongoDB publish), ``quality`` (expectation suites, drift).
The Dagster code location (``podrec_assets``) wires it; the app (``podrec_app``) sits on top.
"""
