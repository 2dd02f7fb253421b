"""Inverse-propensity estimates of list policies from the logged impressions, beside their online value.

The logging policy explores (podrec.serving.exploration): with probability ``share`` a list's last
places hold new episodes drawn uniformly from a pool, each logged with its propensity p. Two candidate
policies differ only in those places:
- ``explore_always``: the places always hold the drawn new episodes — an explored item had target
  probability p / share, so its weight is 1 / share, and the policy's own item there weighs 0;
- ``never_explore``: the policy's own items always — weight 1 / (1 - share), explored items 0.
Places before them weigh 1 under both. The value of a list is its plays; the estimate of a policy is the
mean over lists of Σ weight · plays (``ips``), over the lists that had exploring places (a pool to draw
from). The online result of the same policy is the mean plays of the lists where the logging policy
happened to do what the candidate does (``online``): the randomisation makes those a random sample.
The two should agree within their intervals; the estimate uses every logged list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

POLICIES = ("explore_always", "never_explore")


@dataclass(frozen=True)
class PolicyValue:
    policy: str
    ips: float
    ips_low: float
    ips_high: float
    online: float
    online_low: float
    online_high: float
    lists: int  # lists with exploring places (what the estimate averages over)
    online_lists: int  # of them, those the logging policy served as the candidate would


def _mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    if len(values) < 2:
        return (float(values.mean()) if len(values) else float("nan"),) + (float("nan"),) * 2  # type: ignore[return-value]
    mean, half = (
        float(values.mean()),
        float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))),
    )
    return mean, mean - half, mean + half


def list_values(items: pd.DataFrame, share: float) -> pd.DataFrame:
    """Per list with exploring places: its plays under each candidate's weights, and whether it explored.

    ``items``: one row per served item with impression_id, propensity, explored and plays (0 or more)."""
    logged = items[items["propensity"].notna()]
    eligible = logged.groupby("impression_id")["propensity"].transform("min") < 1
    rows = logged[eligible]
    fixed = rows["propensity"] >= 1
    explored = rows["explored"].astype(bool)
    weights = {
        "explore_always": np.where(fixed, 1.0, np.where(explored, 1 / share, 0.0)),
        "never_explore": np.where(fixed, 1.0, np.where(explored, 0.0, 1 / (1 - share))),
    }
    frame = pd.DataFrame(
        {"impression_id": rows["impression_id"], "plays": rows["plays"], "explored": explored}
    )
    for name, w in weights.items():
        frame[name] = w * rows["plays"].to_numpy(float)
    return frame.groupby("impression_id").agg(
        plays=("plays", "sum"), explored=("explored", "any"), **{p: (p, "sum") for p in POLICIES}
    )


def estimate(items: pd.DataFrame, share: float) -> list[PolicyValue]:
    """The IPS estimate and the online value of each candidate, with 95% intervals."""
    if not 0 < share < 1:
        raise ValueError(f"inverse propensities need an exploration share in (0, 1), got {share}")
    lists = list_values(items, share)
    out = []
    for policy in POLICIES:
        served_so = lists["explored"] if policy == "explore_always" else ~lists["explored"]
        ips = _mean_ci(lists[policy].to_numpy(float))
        online = _mean_ci(lists.loc[served_so, "plays"].to_numpy(float))
        out.append(PolicyValue(policy, *ips, *online, len(lists), int(served_so.sum())))
    return out
