"""The experiment's readout: hybrid - als_only over a period, with 95% intervals and a sample-ratio test.

Units are listeners, counted in their sticky arm (intention to treat) when they listened or were served
a list in the period. Per listener: impressions, plays from lists (a play event carrying an impression's
id, once per impression and episode), the same weighted by 1/log2(1 + rank) (a play at the top counts
fully, deeper ones less), plays of new episodes (younger than ``new_episode_days`` since they appeared,
``APPEARED``), engagement (the sum of silver.daily_engagement) and completion (mean furthest point of
what they played).

- Ratio metrics (plays per impression, plain and position-weighted) are Σ plays / Σ impressions per arm
  with a delta-method variance; their difference gets a normal interval.
- Plays of new episodes are counted twice: all of them (``new_episode_plays``, what the platform gets)
  and those taken from a served list (``new_episode_list_plays``, what the policy itself controls; the
  organic listening both arms share is left out, so its noise is too).
- Per-listener metrics use CUPED: y - (x - x̄)·θ with x the listener's pre-experiment covariates over the
  ``cuped_days`` before the experiment (0 without any) — their engagement, and for the new-episode
  metrics also their plays of new episodes then (the same metric before, the strongest predictor) — and
  θ the least-squares fit over both arms; the arms' adjusted means and a Welch interval on their
  difference. Same expectation, less variance.
- New episodes' exposure: for each episode that first appeared in the period, hours from its appearance
  to its first impression, and to its first play, in each arm; an episode an arm never showed (or
  played) counts at the hours to the period's end, a lower bound. Arms are compared on the same episodes
  (a paired t interval).
- Sample ratio: a chi-square test of the arms' listener counts against the configured split; a p-value
  below ``srm_p_value`` means the assignment (or the logging) is broken and no difference can be trusted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

TREATMENT, CONTROL = "hybrid", "als_only"
Z = float(stats.norm.ppf(0.975))
MEAN_METRICS = ("new_episode_plays", "new_episode_list_plays", "engagement", "completion")
# Each per-listener metric's pre-experiment covariates (columns of ``listener_period``).
NEW_EPISODE_COVARIATES = ("pre_engagement", "pre_new_episode_plays")
COVARIATES = {"new_episode_plays": NEW_EPISODE_COVARIATES, "new_episode_list_plays": NEW_EPISODE_COVARIATES}
DEFAULT_COVARIATES = ("pre_engagement",)
RATIO_METRICS = {"plays_per_impression": "list_plays", "plays_per_impression_weighted": "weighted_plays"}
EXPOSURE_METRICS = {"hours_to_first_impression": "first_impression", "hours_to_first_play": "first_play"}


@dataclass(frozen=True)
class Estimate:
    difference: float
    low: float
    high: float
    hybrid: float
    als_only: float


@dataclass(frozen=True)
class Srm:
    p_value: float
    hybrid: int
    als_only: int
    expected_share: float  # of hybrid


@dataclass
class Readout:
    first: date
    last: date
    metrics: dict[str, Estimate]
    srm: Srm
    variance_reduction: dict[str, float] = field(default_factory=dict)  # CUPED: 1 - var(adjusted)/var(raw)

    def as_json(self) -> dict:
        """The shape ``podrec ab report --json`` prints."""
        return {
            "metrics": {
                name: {k: _plain(getattr(e, k)) for k in ("difference", "low", "high", "hybrid", "als_only")}
                for name, e in self.metrics.items()
            },
            "srm": {
                "p_value": _plain(self.srm.p_value),
                "hybrid": self.srm.hybrid,
                "als_only": self.srm.als_only,
            },
        }


def _plain(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def srm(n_treatment: int, n_control: int, treatment_share: float) -> Srm:
    """Chi-square goodness of fit of the arm sizes to the configured split."""
    total = n_treatment + n_control
    if total == 0 or treatment_share in (0.0, 1.0):
        return Srm(float("nan"), n_treatment, n_control, treatment_share)
    expected = [total * treatment_share, total * (1 - treatment_share)]
    p = float(stats.chisquare([n_treatment, n_control], expected).pvalue)
    return Srm(p, n_treatment, n_control, treatment_share)


def welch(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """mean(x) - mean(y) with a Welch 95% interval."""
    if len(x) < 2 or len(y) < 2:
        return float("nan"), float("nan"), float("nan")
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    diff, se = float(x.mean() - y.mean()), float(np.sqrt(vx + vy))
    if se == 0:
        return diff, diff, diff
    dof = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = float(stats.t.ppf(0.975, dof) * se)
    return diff, diff - half, diff + half


def cuped(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` adjusted by pre-period covariates ``x`` (one column, or one per covariate): y - (x - x̄)·θ
    with θ the least-squares fit of y - ȳ on x - x̄ (one covariate: θ = cov(x, y)/var(x))."""
    centered = np.asarray(x, dtype=float).reshape(len(y), -1)
    centered = centered - centered.mean(axis=0)
    centered = centered[:, centered.var(axis=0) > 0]  # a constant covariate explains nothing
    if len(y) < 2 or centered.shape[1] == 0:
        return y.astype(float)
    theta, *_ = np.linalg.lstsq(centered, y - y.mean(), rcond=None)
    return y - centered @ theta


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> tuple[float, float]:
    """Σ numerator / Σ denominator over listeners and its delta-method variance."""
    n = len(denominator)
    if n < 2 or denominator.sum() == 0:
        return float("nan"), float("nan")
    r = numerator.sum() / denominator.sum()
    mean_d = denominator.mean()
    cov = np.cov(numerator, denominator, ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / (n * mean_d**2)
    return float(r), float(var)


# When each episode appeared, from view ``episodes``. One seen after the catalog's first snapshot
# appeared when it was seen (or published, if later: a scheduled episode). The first snapshot holds the
# whole back catalogue at once, so "first seen" says nothing there: those appeared when published
# (never, when the feed gives no date) — else every episode would count as new for the first days.
APPEARED = """
    select episode_id,
           case when first_seen_date > min(first_seen_date) over ()
                then greatest(published_at, cast(first_seen_date as timestamptz))
                else published_at end as appeared_at
    from episodes"""


def listener_period(
    con: duckdb.DuckDBPyConnection, first: date, last: date, new_episode_days: int, cuped_days: int
) -> pd.DataFrame:
    """One row per listener active (events or lists) in ``first..last``, from views ``events``,
    ``engagement``, ``impressions`` and ``episodes``; ``pre_engagement`` from the days before."""
    pre_first = first - timedelta(days=cuped_days)
    return con.execute(
        f"""
        with appeared as ({APPEARED}),
             plays as (
                 select e.user_id, e.episode_id, e.impression_id, e.session_id, e.occurred_at, a.appeared_at
                 from events e left join appeared a using (episode_id)
                 where e.event_date between ? and ? and e.event_type = 'play'),
             shown as (
                 select user_id, count(distinct impression_id) as impressions
                 from impressions where event_date between ? and ? group by all),
             from_lists as (
                 select p.user_id, count(*) as list_plays, sum(1 / log2(1 + i.rank)) as weighted_plays
                 from (select distinct user_id, impression_id, episode_id from plays
                       where impression_id is not null) p
                 join (select distinct impression_id, episode_id, rank from impressions) i
                   using (impression_id, episode_id)
                 group by all),
             new_plays as (  -- plays of new episodes, in the period and (the CUPED covariate) before it
                 select e.user_id,
                        count(distinct (e.episode_id, e.session_id)) filter (e.event_date >= ?)
                            as new_episode_plays,
                        count(distinct (e.episode_id, e.session_id))
                            filter (e.event_date >= ? and e.impression_id is not null)
                            as new_episode_list_plays,
                        count(distinct (e.episode_id, e.session_id)) filter (e.event_date < ?)
                            as pre_new_episode_plays
                 from events e join appeared a using (episode_id)
                 where e.event_date between ? and ? and e.event_type = 'play'
                   and e.occurred_at - a.appeared_at < to_days(cast(? as integer))
                 group by all),
             engaged as (
                 select user_id, sum(engagement) as engagement,
                        avg(max_completion) filter (plays > 0) as completion
                 from engagement where event_date between ? and ? group by all),
             pre as (
                 select user_id, sum(engagement) as pre_engagement
                 from engagement where event_date between ? and ? group by all),
             active as (
                 select user_id from events where event_date between ? and ?
                 union select user_id from impressions where event_date between ? and ?)
        select a.user_id, coalesce(s.impressions, 0) as impressions,
               coalesce(l.list_plays, 0) as list_plays, coalesce(l.weighted_plays, 0.0) as weighted_plays,
               coalesce(n.new_episode_plays, 0) as new_episode_plays,
               coalesce(n.new_episode_list_plays, 0) as new_episode_list_plays,
               coalesce(g.engagement, 0.0) as engagement, g.completion,
               coalesce(p.pre_engagement, 0.0) as pre_engagement,
               coalesce(n.pre_new_episode_plays, 0) as pre_new_episode_plays
        from active a left join shown s using (user_id) left join from_lists l using (user_id)
             left join new_plays n using (user_id) left join engaged g using (user_id)
             left join pre p using (user_id)
        order by a.user_id
        """,
        [first, last, first, last, first, first, first, pre_first, last, new_episode_days, first, last,
         pre_first, first - timedelta(days=1), first, last, first, last],
    ).df()  # fmt: skip


def new_episode_exposure(con: duckdb.DuckDBPyConnection, first: date, last: date) -> pd.DataFrame:
    """Per episode that first appeared in ``first..last`` and per arm: hours from its appearance to its
    first impression and to its first play by a listener of the arm (NaN: not yet)."""
    return con.execute(
        f"""
        with appeared as ({APPEARED}),
             fresh as (select * from appeared where cast(appeared_at as date) between ? and ?),
             shown as (
                 select episode_id, policy, min(served_at) as at from impressions
                 where event_date >= ? group by all),
             arm as (select distinct user_id, policy from impressions),
             played as (
                 select e.episode_id, a.policy, min(e.occurred_at) as at
                 from events e join arm a using (user_id)
                 where e.event_date >= ? and e.event_type = 'play' group by all)
        select f.episode_id, p.policy, f.appeared_at,
               date_diff('second', f.appeared_at, s.at) / 3600.0 as first_impression,
               date_diff('second', f.appeared_at, q.at) / 3600.0 as first_play
        from fresh f cross join (values ('hybrid'), ('als_only')) p(policy)
             left join shown s on s.episode_id = f.episode_id and s.policy = p.policy
             left join played q on q.episode_id = f.episode_id and q.policy = p.policy
        order by f.episode_id, p.policy
        """,
        [first, last, first, first],
    ).df()


def _paired(exposure: pd.DataFrame, column: str, end_hours: pd.Series) -> Estimate:
    """Mean hours per arm over the same episodes (censored at the period's end) and a paired interval."""
    hours = exposure.assign(h=exposure[column].fillna(end_hours)).pivot(
        index="episode_id", columns="policy", values="h"
    )
    if TREATMENT not in hours or CONTROL not in hours or hours.empty:
        return Estimate(*(float("nan"),) * 5)
    d = (hours[TREATMENT] - hours[CONTROL]).to_numpy(float)
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else np.nan
    t, c = float(hours[TREATMENT].mean()), float(hours[CONTROL].mean())
    return Estimate(float(d.mean()), float(d.mean() - half), float(d.mean() + half), t, c)


def readout(
    con: duckdb.DuckDBPyConnection,
    first: date,
    last: date,
    assign: Callable[[str], tuple[int, str]],
    treatment_share: float,
    new_episode_days: int,
    cuped_days: int,
) -> Readout:
    """hybrid - als_only over ``first..last`` for every metric, and the sample-ratio test."""
    con.execute("set TimeZone = 'UTC'")  # dates read as UTC midnights, like every podrec day
    listeners = listener_period(con, first, last, new_episode_days, cuped_days)
    listeners["policy"] = [assign(u)[1] for u in listeners["user_id"]]
    arms = {p: listeners[listeners["policy"] == p] for p in (TREATMENT, CONTROL)}
    metrics: dict[str, Estimate] = {}
    for name, column in RATIO_METRICS.items():
        (rt, vt), (rc, vc) = (
            ratio(a[column].to_numpy(float), a["impressions"].to_numpy(float)) for a in arms.values()
        )
        half = Z * np.sqrt(vt + vc)
        metrics[name] = Estimate(rt - rc, rt - rc - half, rt - rc + half, rt, rc)
    reduction = {}
    for name in MEAN_METRICS:
        known = listeners[listeners[name].notna()]
        y = known[name].to_numpy(float)
        x = known[list(COVARIATES.get(name, DEFAULT_COVARIATES))].to_numpy(float)
        adjusted = pd.Series(cuped(y, x), index=known.index)
        if len(y) > 1 and y.var() > 0:
            reduction[name] = float(1 - adjusted.var() / y.var())
        t = adjusted[known["policy"] == TREATMENT].to_numpy()
        c = adjusted[known["policy"] == CONTROL].to_numpy()
        diff, low, high = welch(t, c)
        metrics[name] = Estimate(diff, low, high, float(np.mean(t)) if len(t) else np.nan,
                                 float(np.mean(c)) if len(c) else np.nan)  # fmt: skip
    exposure = new_episode_exposure(con, first, last)
    end = pd.Timestamp(last + timedelta(days=1))
    appeared = pd.to_datetime(exposure["appeared_at"], utc=True).dt.tz_localize(None)
    end_hours = (end - appeared).dt.total_seconds() / 3600
    for name, column in EXPOSURE_METRICS.items():
        metrics[name] = _paired(exposure, column, end_hours)
    ratio_test = srm(len(arms[TREATMENT]), len(arms[CONTROL]), treatment_share)
    return Readout(first, last, metrics, ratio_test, reduction)


VIEWS = {
    "events": ("silver", "user_events"),
    "engagement": ("silver", "daily_engagement"),
    "impressions": ("silver", "impressions"),
    "episodes": ("silver", "episodes"),
}


def experiment_days(con: duckdb.DuckDBPyConnection, experiment_id: str) -> tuple[date, date] | None:
    """First and last day with impressions of ``experiment_id``: the experiment's period so far."""
    first, last = con.execute(
        "select min(event_date), max(event_date) from impressions where experiment_id = ?", [experiment_id]
    ).fetchone()
    return None if first is None else (first, last)


def served_items_with_plays(con: duckdb.DuckDBPyConnection, first: date, last: date) -> pd.DataFrame:
    """Every served item of ``first..last`` with a logged propensity, and how many times its listener
    played it from that list (what podrec.recsys.off_policy weighs)."""
    return con.execute(
        """
        with plays as (
                 select impression_id, episode_id, count(distinct session_id) as plays from events
                 where event_date between ? and ? + 1 and event_type = 'play' and impression_id is not null
                 group by all)
        select i.impression_id, i.rank, i.episode_id, i.propensity, i.explored, coalesce(p.plays, 0) as plays
        from impressions i left join plays p using (impression_id, episode_id)
        where i.event_date between ? and ? and i.propensity is not null
        order by i.impression_id, i.rank
        """,
        [first, last, first, last],
    ).df()


def readout_rows(result: Readout, day: date, scope: str, columns: list[str]) -> pd.DataFrame:
    """``result`` as rows of monitoring.ab_analysis: levels ``<scope>_policy`` (each arm's value),
    ``<scope>_difference`` (with the interval) and ``<scope>_srm`` (p-value and each arm's listeners)."""
    ab = result.srm
    n = ab.hybrid + ab.als_only
    sizes = {TREATMENT: ab.hybrid, CONTROL: ab.als_only}
    nan = float("nan")
    rows = []
    for name, e in result.metrics.items():
        rows += [(day, f"{scope}_policy", None, arm, name, value, nan, nan, sizes[arm])
                 for arm, value in ((TREATMENT, e.hybrid), (CONTROL, e.als_only))]  # fmt: skip
        rows.append((day, f"{scope}_difference", None, f"{TREATMENT} - {CONTROL}", name, e.difference, e.low,
                     e.high, n))  # fmt: skip
    rows.append(
        (day, f"{scope}_srm", None, f"{TREATMENT} vs {CONTROL}", "srm_p_value", ab.p_value, nan, nan, n)
    )
    rows += [
        (day, f"{scope}_srm", None, arm, "listeners", float(size), nan, nan, size)
        for arm, size in sizes.items()
    ]
    return pd.DataFrame(rows, columns=columns)
