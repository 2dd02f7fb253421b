"""The scale tables of docs/benchmarks.md and the closing notes, printed from the committed result files.

    .venv/bin/python bench/scale_table.py              # S / M / L one day, M over 14 days

Reads ``bench/results/scale_{S,M,L}_1d.json`` (or the first day of ``scale_<size>_14d.json`` when the
one-day run failed) and ``scale_M_14d.json``; a missing or failed run is a missing column, never a guess.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
# Incremental: their cost should follow the day's data (issue 14: day 14 at most 1.2x day 1).
INCREMENTAL = (
    "bronze_user_events", "bronze_user_events_expectations", "silver/user_events",
    "silver_user_events_expectations", "silver/daily_engagement", "silver_daily_engagement_expectations",
    "gold/episode_embeddings", "gold_episode_embeddings_expectations", "silver/transcripts",
    "silver_transcripts_expectations",
)  # fmt: skip


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _seconds(day: dict, asset: str) -> str:
    found = day["assets"].get(asset)
    return f"{found['seconds']:.1f}" if found else "-"


def _first_good_day(size: str) -> dict | None:
    """The size's one-day run, or the first day of its 14-day run, whichever succeeded."""
    for name in (f"scale_{size}_1d", f"scale_{size}_14d"):
        run = _load(name)
        if run and run["days"] and run["days"][0]["success"]:
            return {**run, "days": run["days"][:1]}
    return None


def one_day_table() -> str:
    runs = {size: run for size in "SML" if (run := _first_good_day(size))}
    assets = sorted({a for run in runs.values() for a in run["days"][0]["assets"]})
    head = " | ".join(f"{s} ({r['listeners']:,} x {r['episodes']:,})" for s, r in runs.items())
    lines = [f"| step (seconds, one day) | {head} |", "| --- |" + " --- |" * len(runs)]
    lines += [
        f"| {a} | " + " | ".join(_seconds(r["days"][0], a) for r in runs.values()) + " |" for a in assets
    ]
    lines.append("| **events** | " + " | ".join(f"{r['days'][0]['events']:,}" for r in runs.values()) + " |")
    lines.append(
        "| **run** | " + " | ".join(f"{r['days'][0]['run_seconds']:.0f}" for r in runs.values()) + " |"
    )
    lines.append("| **peak RSS (MB)** | " + " | ".join(str(r["peak_rss_mb"]) for r in runs.values()) + " |")
    return "\n".join(lines)


def fourteen_day_table() -> str:
    run = _load("scale_M_14d")
    if run is None:
        return "(no 14-day run in bench/results/scale_M_14d.json)"
    good = [d for d in run["days"] if d["success"]]
    if not good:
        return "(the 14-day run has no complete day)"
    # Day 1, day 7 (a 7-day window just full) and day 14 — or the last complete day, if the run stopped.
    picked = {n: good[n - 1] for n in (1, 7, 14) if len(good) >= n}
    picked[len(good)] = good[-1]
    names = sorted(picked)
    last = names[-1]
    assets = sorted({a for d in picked.values() for a in d["assets"]})
    head = " | ".join(f"day {n}" for n in names)
    lines = [f"| step (seconds) | {head} | day {last} / day 1 |", "| --- |" + " --- |" * (len(names) + 1)]
    for a in assets:
        first, final = picked[1]["assets"].get(a), picked[last]["assets"].get(a)
        ratio = f"{final['seconds'] / first['seconds']:.2f}" if first and final and first["seconds"] else "-"
        mark = " (incremental)" if a in INCREMENTAL else ""
        lines.append(f"| {a}{mark} | " + " | ".join(_seconds(picked[n], a) for n in names) + f" | {ratio} |")
    lines.append("| **events** | " + " | ".join(f"{picked[n]['events']:,}" for n in names) + " | |")
    lines.append("| **run** | " + " | ".join(f"{picked[n]['run_seconds']:.0f}" for n in names) + " | |")
    lines.append(
        f"\nWindow {run['window_days']} days; {len(good)} of {len(run['days'])} days ran to the end; "
        f"peak RSS {run['peak_rss_mb']} MB."
    )
    return "\n".join(lines)


def main() -> None:
    print(one_day_table(), end="\n\n")
    print(fourteen_day_table())


if __name__ == "__main__":
    main()
