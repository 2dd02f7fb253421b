"""What the dashboard shows, as plain functions over DuckDB views of the Delta tables.

No Spark: delta-rs resolves each table's live files and DuckDB scans them in-process, so the
dashboard stays light and reads what the last commit of each table holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from podrec.lake.duck import LakeViews, open_lake
from podrec.lake.paths import arrow_uri, table_uri
from podrec.recsys.ab_readout import APPEARED

TABLES = {
    "events": ("silver", "user_events"),
    "engagement": ("silver", "daily_engagement"),
    "episodes": ("silver", "episodes"),
    "impressions": ("silver", "impressions"),
    "recommendations": ("gold", "recommendations"),
    "evaluation": ("gold", "evaluation"),
    "ab": ("monitoring", "ab_analysis"),
}
DRIFT_REPORTS = ("monitoring", "drift_reports")


Lake = LakeViews


def open_dashboard_lake(lake_root: str) -> Lake:
    """The dashboard's tables as DuckDB views; the ones not written yet are listed as missing."""
    return open_lake(lake_root, TABLES, missing_ok=True)


def activity(lake: Lake, hours: int) -> pd.DataFrame:
    """Events, listeners and event mix in the ``hours`` before the newest event.

    Anchored on the newest event rather than the wall clock, so a replayed or simulated log reads
    the same as a live one; the anchor is returned with the numbers."""
    return lake.df(
        """
        with w as (select max(occurred_at) as newest from events)
        select any_value(w.newest) as newest,
               count(*) as events,
               count(distinct user_id) as listeners,
               count(*) filter (event_type = 'play') as plays,
               count(*) filter (event_type = 'complete') as completes,
               count(*) filter (event_type = 'like') as likes,
               count(*) filter (event_type = 'skip') as skips
        from events, w
        where occurred_at > w.newest - to_hours(?)
        """,
        [hours],
    )


def events_per_hour(lake: Lake, hours: int = 24) -> pd.DataFrame:
    return lake.df(
        """
        with w as (select max(occurred_at) as newest from events)
        select date_trunc('hour', occurred_at) as hour, event_type, count(*) as events
        from events, w
        where occurred_at > w.newest - to_hours(?)
        group by all order by hour
        """,
        [hours],
    )


def arm_metrics(lake: Lake, days: int = 7) -> pd.DataFrame:
    """Per A/B arm (from the newest lists): listeners with a list, mean completion of what they played
    in the last ``days`` of engagement, and catalog diversity (distinct canonical episodes in the arm's
    lists / the catalog). No engagement rate: lists are made only for listeners who engaged, so it is
    100% for every arm by construction; what the arms can differ on is in ``bucket_plays``."""
    return lake.df(
        """
        with latest as (select * from recommendations
                        where rec_date = (select max(rec_date) from recommendations)
                          and not starts_with(user_id, '__popular__/')),
             arm as (select distinct user_id, policy from latest),
             recent as (select * from engagement
                        where event_date > (select max(event_date) from engagement) - to_days(?)),
             per_user as (select user_id, avg(max_completion) filter (plays > 0) as completion
                          from recent group by user_id),
             catalog as (select count(distinct canonical_episode_id) as n from episodes)
        select arm.policy,
               count(*) as listeners,
               avg(per_user.completion) as completion,
               (select count(distinct canonical_episode_id) from latest l where l.policy = arm.policy)
                 / any_value(catalog.n) as catalog_diversity
        from arm left join per_user using (user_id), catalog
        group by arm.policy order by arm.policy
        """,
        [days],
    )


def bucket_plays(lake: Lake, days: int = 7, new_episode_days: int = 7) -> pd.DataFrame:
    """Per arm and bucket, over the last ``days`` of served lists (silver.impressions): listeners shown
    a list, impressions, plays taken from a list (distinct impression and episode played), plays per
    impression, and plays of new episodes (younger than ``new_episode_days`` when played, from a list or
    not) per listener — the measures a policy moves, so the arms can be told apart.

    A listener counts in every (arm, bucket) they were served in within the window (an experiment
    re-bucketed mid-window puts them in two)."""
    return lake.df(
        f"""
        with since as (select max(event_date) - cast(? as integer) as day from impressions),
             shown as (select distinct impression_id, user_id, policy, bucket, episode_id
                       from impressions, since where event_date > since.day),
             arm as (select distinct user_id, policy, bucket from shown),
             appeared as ({APPEARED}),
             plays as (select distinct e.user_id, e.impression_id, e.episode_id, e.session_id, e.occurred_at
                       from events e, since where e.event_type = 'play' and e.event_date > since.day),
             list_plays as (
                 select s.policy, s.bucket, count(distinct (p.impression_id, p.episode_id)) as list_plays
                 from plays p join shown s using (impression_id, episode_id) group by all),
             new_plays as (
                 select a.policy, a.bucket,
                        count(distinct (p.user_id, p.episode_id, p.session_id)) as new_plays
                 from plays p join arm a using (user_id) join appeared n using (episode_id)
                 where p.occurred_at - n.appeared_at < to_days(cast(? as integer)) group by all),
             cells as (select policy, bucket, count(distinct user_id) as listeners,
                              count(distinct impression_id) as impressions
                       from shown group by all)
        select c.policy, c.bucket, c.listeners, c.impressions,
               coalesce(l.list_plays, 0) as list_plays,
               coalesce(l.list_plays, 0) / c.impressions as plays_per_impression,
               coalesce(n.new_plays, 0) as new_episode_plays,
               coalesce(n.new_plays, 0) / c.listeners as new_episode_plays_per_listener
        from cells c left join list_plays l using (policy, bucket)
             left join new_plays n using (policy, bucket)
        order by c.bucket, c.policy
        """,
        [days, new_episode_days],
    )


def arm_plays(buckets: pd.DataFrame) -> pd.DataFrame:
    """``bucket_plays`` summed to one row per arm, its ratios recomputed from the sums."""
    arms = buckets.groupby("policy", as_index=False)[["listeners", "impressions", "list_plays",
                                                       "new_episode_plays"]].sum()  # fmt: skip
    arms["plays_per_impression"] = arms["list_plays"] / arms["impressions"]
    arms["new_episode_plays_per_listener"] = arms["new_episode_plays"] / arms["listeners"]
    return arms


def experiment_readout(lake: Lake) -> pd.DataFrame:
    """The experiment so far, as of the newest analysed day: per readout metric (podrec.recsys.ab_readout)
    each arm's value, hybrid - als_only and its 95% interval."""
    return lake.df(
        """
        with newest as (select * from ab where day = (select max(day) from ab where level = 'experiment_srm'))
        select d.metric, h.value as hybrid, c.value as als_only, d.value as difference,
               d.ci_low as low, d.ci_high as high, any_value(d.day) over () as day
        from newest d
        join newest h on h.metric = d.metric and h.level = 'experiment_policy' and h.policy = 'hybrid'
        join newest c on c.metric = d.metric and c.level = 'experiment_policy' and c.policy = 'als_only'
        where d.level = 'experiment_difference' order by d.metric
        """
    )


def sample_ratio(lake: Lake) -> pd.DataFrame:
    """The sample-ratio test of the experiment so far, per analysed day: p-value and each arm's listeners."""
    return lake.df(
        """
        select day,
               max(value) filter (metric = 'srm_p_value') as p_value,
               max(listeners) filter (policy = 'hybrid') as hybrid,
               max(listeners) filter (policy = 'als_only') as als_only
        from ab where level = 'experiment_srm' group by day order by day
        """
    )


def daily_difference(lake: Lake, metric: str) -> pd.DataFrame:
    """hybrid - als_only of ``metric`` on each day alone, with its 95% interval."""
    return lake.df(
        "select day, value as difference, ci_low as low, ci_high as high from ab "
        "where level = 'day_difference' and metric = ? order by day",
        [metric],
    )


def top_episodes(lake: Lake, per_language: int = 5, days: int = 1) -> pd.DataFrame:
    """Most-listened episodes per listener language over the last ``days`` of engagement."""
    return lake.df(
        """
        with recent as (select * from engagement
                        where event_date > (select max(event_date) from engagement) - to_days(?)),
             ranked as (
               select lower(split_part(replace(coalesce(r.locale, 'und'), '_', '-'), '-', 1)) as language,
                      r.episode_id, count(distinct r.user_id) as listeners,
                      avg(r.max_completion) as completion
               from recent r group by all),
             top as (select *, row_number() over (partition by language order by listeners desc,
                                                  episode_id) as place from ranked)
        select top.language, top.place, top.episode_id, e.title, e.feed_title as show,
               e.language as episode_language, top.listeners, top.completion
        from top left join episodes e using (episode_id)
        where top.place <= ? order by top.language, top.place
        """,
        [days, per_language],
    )


def score_distribution(lake: Lake) -> pd.DataFrame:
    """Scores of the newest lists, per policy (popular fallback lists excluded)."""
    return lake.df(
        """
        select policy, rank, score from recommendations
        where rec_date = (select max(rec_date) from recommendations)
          and not starts_with(user_id, '__popular__/')
        """
    )


def evaluation(lake: Lake) -> pd.DataFrame:
    """The newest offline evaluation: one row per protocol, policy and cold-start strategy."""
    frame = lake.df(
        """
        select protocol, policy, cold_start, metric, value, users, eval_date from evaluation
        where evaluated_at = (select max(evaluated_at) from evaluation)
        """
    )
    if frame.empty:
        return frame
    wide = frame.pivot_table(
        index=["protocol", "policy", "cold_start", "users", "eval_date"], columns="metric", values="value"
    )
    return wide.reset_index().rename_axis(columns=None)


@dataclass(frozen=True)
class DriftReport:
    """One saved Evidently report, wherever the lake is (a folder or an object store)."""

    day: str  # its folder: the partition it describes
    name: str  # e.g. engagement.html
    uri: str  # the lake's own spelling (a path, or s3a://…), for links and logs
    _filesystem: Any = field(repr=False, compare=False)
    _path: str = field(repr=False, compare=False)

    def read_text(self) -> str:
        with self._filesystem.open_input_stream(self._path) as stream:
            return stream.read().decode(errors="replace")


def drift_reports(lake_root: str, limit: int = 10) -> list[DriftReport]:
    """The newest Evidently reports saved under ``<lake>/monitoring/drift_reports``, newest first,
    listed through Arrow's filesystems so a lake on an object store shows its reports too."""
    from pyarrow import fs

    root = table_uri(lake_root, *DRIFT_REPORTS)
    filesystem, path = fs.FileSystem.from_uri(arrow_uri(root))
    found = filesystem.get_file_info(fs.FileSelector(path, recursive=True, allow_not_found=True))
    html = [f for f in found if f.type == fs.FileType.File and f.base_name.endswith(".html")]
    html.sort(key=lambda f: (f.mtime_ns or 0, f.path), reverse=True)
    return [
        DriftReport(
            day=f.path.rsplit("/", 2)[-2],
            name=f.base_name,
            uri=f"{root.rstrip('/')}/{f.path[len(path) :].lstrip('/')}",
            _filesystem=filesystem,
            _path=f.path,
        )
        for f in html[:limit]
    ]
