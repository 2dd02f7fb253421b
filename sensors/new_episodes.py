"""Run the content track when bronze lands episodes that have no transcript yet.

The decision is a plain function (``assess``). The sensor reads two numbers through DuckDB over the
lake (no Spark): the newest ``bronze.episodes`` snapshot's episodes without a row in
``silver.transcripts``, and a fingerprint of their ids. It keeps the bronze table's Delta version as
its cursor, so an unchanged table costs one look at the Delta log, and it keys each run by the
fingerprint, so a tick never asks twice for the same episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from podrec.lake.duck import open_lake
from podrec.lake.paths import delta_rs_uri
from resources import LakeResource

# The catalog first, then transcripts → embeddings → similarity; each skips what is already done.
CONTENT_TRACK = [
    AssetKey(["silver", "episodes"]),
    AssetKey(["silver", "transcripts"]),
    AssetKey(["gold", "episode_embeddings"]),
    AssetKey(["gold", "episode_similarity"]),
]


@dataclass(frozen=True)
class NewEpisodes:
    untranscribed: int  # episodes of the newest snapshot without a transcript
    fingerprint: str  # md5 of their sorted ids


def assess(found: NewEpisodes | None) -> tuple[bool, str]:
    """(run?, why): run when the newest snapshot holds episodes nobody has transcribed."""
    if found is None:
        return False, "bronze/episodes has no snapshot yet"
    if found.untranscribed == 0:
        return False, "every episode of the newest bronze snapshot has a transcript"
    return True, f"{found.untranscribed} episode(s) of the newest bronze snapshot have no transcript"


def untranscribed(lake_root: str) -> NewEpisodes | None:
    views = open_lake(
        lake_root,
        {"bronze": ("bronze", "episodes"), "transcripts": ("silver", "transcripts")},
        missing_ok=True,
    )
    if not views.has("bronze"):
        return None
    done = "select episode_id from transcripts" if views.has("transcripts") else "select null as episode_id"
    count, fingerprint = views.sql(
        "select count(*), md5(coalesce(string_agg(episode_id, ',' order by episode_id), '')) from bronze "
        f"where ingest_date = (select max(ingest_date) from bronze) and episode_id not in ({done})"
    ).fetchone()
    return NewEpisodes(int(count), str(fingerprint))


def table_version(uri: str) -> int | None:
    from deltalake import DeltaTable

    target = delta_rs_uri(uri)
    return DeltaTable(target).version() if DeltaTable.is_deltatable(target) else None


def build_new_episodes_sensor() -> SensorDefinition:
    @sensor(
        name="new_episodes_sensor",
        asset_selection=AssetSelection.assets(*CONTENT_TRACK),
        minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.STOPPED,
        description=(
            "Requests the content track (catalog → transcripts → embeddings → similarity) when the newest "
            "bronze/episodes snapshot holds episodes without a transcript."
        ),
    )
    def new_episodes_sensor(
        context: SensorEvaluationContext, lake: LakeResource
    ) -> SensorResult | SkipReason:
        version = table_version(lake.table("bronze", "episodes"))
        if version is not None and context.cursor == str(version):
            return SkipReason(f"bronze/episodes unchanged since version {version}")
        run, why = assess(found := untranscribed(lake.root))
        if not run or found is None:
            return SensorResult(skip_reason=why, cursor=None if version is None else str(version))
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=f"content-{found.fingerprint}",
                    asset_selection=CONTENT_TRACK,
                    tags={"podrec/new_episodes": str(found.untranscribed)},
                )
            ],
            cursor=str(version),
        )

    return new_episodes_sensor
