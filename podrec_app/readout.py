"""``podrec ab report``: the experiment's readout from the lake, as a table or as JSON.

The period is every day with impressions of the configured experiment; the numbers come from
podrec.recsys.ab_readout (and, with exploration on, podrec.recsys.off_policy) over DuckDB views of the
silver tables — the same functions the daily ``monitoring/ab_analysis`` asset writes with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from podrec.lake.duck import open_lake
from podrec.recsys.ab import assign
from podrec.recsys.ab_readout import VIEWS, Readout, experiment_days, readout, served_items_with_plays
from podrec.recsys.off_policy import PolicyValue, estimate
from podrec.settings import PodrecSettings


class NoExperiment(LookupError):
    """No impressions of the configured experiment in the lake yet."""


@dataclass(frozen=True)
class Report:
    readout: Readout
    off_policy: list[PolicyValue]


def experiment_report(settings: PodrecSettings) -> Report:
    views = open_lake(settings.lake.root, VIEWS, missing_ok=True)
    if views.missing:
        names = ", ".join("/".join(VIEWS[v]) for v in views.missing)
        raise NoExperiment(
            f"nothing to report: {names} not in the lake yet; run `podrec loop` or the daily job first"
        )
    ab = settings.ab
    period = experiment_days(views.con, ab.experiment_id)
    if period is None:
        raise NoExperiment(f"no impressions of experiment {ab.experiment_id} in silver.impressions yet")
    result = readout(
        views.con, *period, lambda user_id: assign(user_id, ab), ab.hybrid_buckets / 100, ab.new_episode_days,
        ab.cuped_days,
    )  # fmt: skip
    items = served_items_with_plays(views.con, *period)
    share = settings.exploration.share
    return Report(result, estimate(items, share) if len(items) and 0 < share < 1 else [])


def report_json(settings: PodrecSettings) -> dict[str, Any]:
    return experiment_report(settings).readout.as_json()


def _number(value: float) -> str:
    return "—" if value != value else f"{value:.4g}"


def report_text(settings: PodrecSettings) -> str:
    """The readout as a table a person reads: each metric's arms, difference and 95% interval."""
    report = experiment_report(settings)
    r = report.readout
    lines = [
        f"experiment {settings.ab.experiment_id}, {r.first} .. {r.last}: hybrid - als_only (95% interval)",
        f"{'metric':<32}{'hybrid':>10}{'als_only':>10}{'difference':>12}  interval",
    ]
    for name, e in r.metrics.items():
        cuped = f"  CUPED -{r.variance_reduction[name]:.0%} variance" if name in r.variance_reduction else ""
        lines.append(
            f"{name:<32}{_number(e.hybrid):>10}{_number(e.als_only):>10}{_number(e.difference):>12}  "
            f"[{_number(e.low)}, {_number(e.high)}]{cuped}"
        )
    srm = r.srm
    verdict = "MISMATCH" if srm.p_value < settings.ab.srm_p_value else "ok"
    lines.append(
        f"sample ratio: hybrid {srm.hybrid}, als_only {srm.als_only} listeners, expected "
        f"{srm.expected_share:.0%} hybrid: chi-square p = {srm.p_value:.3g} "
        f"({verdict}; warns below {settings.ab.srm_p_value})"
    )
    for v in report.off_policy:
        lines.append(
            f"off-policy, {v.policy}: plays per list IPS {v.ips:.4f} [{v.ips_low:.4f}, {v.ips_high:.4f}] "
            f"over {v.lists} lists; online {v.online:.4f} [{v.online_low:.4f}, {v.online_high:.4f}] "
            f"over {v.online_lists}"
        )
    return "\n".join(lines)
