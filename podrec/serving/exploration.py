"""Exploration slots: new episodes served at random, with the probability each item had of being shown.

With ``share`` > 0, a served list explores with probability ``share`` (drawn per request): its last
``slots`` places go to episodes drawn uniformly, without replacement, from the pool of new episodes in
the listener's language that the list does not already hold (m = min(slots, |pool|) of them). Every
item then carries its propensity, the probability that this item was shown at this place given the
list the policy made:
- places before the exploring ones: 1 (shown either way);
- the policy's own items in the m exploring places: 1 - share;
- an explored episode: share · m / |pool|.
These are what an inverse-propensity estimate (podrec.recsys.off_policy) divides by. With ``share`` = 0
nothing changes and no propensity is logged.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

EXPLORED_REASON = "New in your language: we are trying it out for you."


def explore(
    items: Sequence[Mapping[str, Any]],
    pool: Sequence[Mapping[str, Any]],
    share: float,
    slots: int,
    draw: random.Random,
) -> list[dict[str, Any]]:
    """``items`` (ranked 1..k) with the exploring places filled and every item's propensity."""
    out = [dict(item) for item in items]
    if share <= 0 or not out:
        return out
    listed = {item.get("canonical_episode_id") or item["episode_id"] for item in out}
    candidates = [e for e in pool if (e.get("canonical_episode_id") or e["episode_id"]) not in listed]
    drawn = min(slots, len(out), len(candidates))
    kept = len(out) - drawn
    for rank, item in enumerate(out, start=1):
        item.update(propensity=1.0 if rank <= kept else 1.0 - share, explored=False)
    if drawn == 0 or draw.random() >= share:
        return out
    for offset, episode in enumerate(draw.sample(candidates, drawn)):
        rank = kept + offset + 1
        out[rank - 1] = {
            "rank": rank, "episode_id": episode["episode_id"],
            "canonical_episode_id": episode.get("canonical_episode_id") or episode["episode_id"],
            "language": episode.get("language"), "title": episode.get("title"), "score": None,
            "reason": EXPLORED_REASON, "propensity": share * drawn / len(candidates), "explored": True,
        }  # fmt: skip
    return out
