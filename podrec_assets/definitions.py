"""The podrec code location: every asset, check, job, sensor and resource meets here.

``build_definitions(settings)`` builds it all from one settings tree: the daily partitions and the
model window, each asset's knobs, the checks' thresholds, the resources. Dagster loads ``defs``
lazily, so nothing is read at import time; tests, the demo and the command line call
``build_definitions`` with the settings they want.

One module per layer, each returning its assets and the jobs that select them (for backfills and runs
by hand): bronze → silver → gold_content / gold_recommender → serving → monitoring; ``daily`` is the
job that spans them. When each asset runs is ``automation`` (declarative conditions, one sensor);
checks live in ``checks/``, the Kafka-lag sensor in ``sensors/``, resources in ``resources/``;
``catalog`` adds what Dagster's catalog shows of every table (columns, column lineage, freshness).
"""

from dagster import Definitions, definitions, in_process_executor

from checks.burst_checks import burst_checks
from checks.drift_checks import drift_checks
from checks.expectation_checks import table_checks
from podrec.lake.object_store import use_object_store
from podrec.settings import PodrecSettings, load_settings
from podrec_assets import (
    bronze,
    daily,
    gold_content,
    gold_recommender,
    monitoring,
    serving,
    silver,
    silver_bursts,
)
from podrec_assets.automation import with_automation
from podrec_assets.calendar import Calendar
from podrec_assets.catalog import with_catalog
from resources import build_resources
from sensors.kafka_lag import build_kafka_lag_sensor


def build_definitions(settings: PodrecSettings) -> Definitions:
    # The assets that read the lake through delta-rs (DuckDB, Arrow) find an S3-API store by AWS_*.
    use_object_store(settings.lake)
    calendar = Calendar.from_settings(settings)
    defs = Definitions.merge(
        bronze.definitions(settings, calendar),
        silver.definitions(settings, calendar),
        silver_bursts.definitions(settings, calendar),
        gold_content.definitions(),
        gold_recommender.definitions(settings, calendar),
        serving.definitions(settings, calendar),
        monitoring.definitions(settings, calendar),
        daily.definitions(),
        Definitions(
            asset_checks=[
                *table_checks(settings, calendar.daily),
                *drift_checks(settings, calendar.daily),
                *burst_checks(settings, calendar.daily),
            ],
            sensors=[build_kafka_lag_sensor(settings.kafka, running=settings.automation.running)],
            resources=build_resources(settings),
            # One process per run: Spark parallelises inside it; a process per step would start a JVM each.
            executor=in_process_executor,
        ),
    )
    return with_catalog(with_automation(defs, settings), settings)


@definitions
def defs() -> Definitions:
    """What ``dagster dev`` and the code server load: the deployment's settings, read when loaded."""
    return build_definitions(load_settings())
