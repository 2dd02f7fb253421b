"""The list rules of "beyond the anchors", turned on one at a time: NDCG@10 before and after each step.

Runs ``podrec evaluate --protocol time`` and ``--protocol stratified`` on the lake the environment's
``PODREC_*`` settings point at (a simulated lake with content: after ``make demo`` or ``podrec loop``),
once per step, each step adding one rule to the one before:

0. the seed's rules: ALS per episode id, no followed shows, no re-ranking, engagement without time
   heard and with a flat early skip, the settings as written (tuning pinned);
1. + duration-aware engagement (time heard counts; an early skip's negative fades);
2. + variants pool their evidence (ALS on canonical episodes);
3. + the next episode of a followed show;
4. + MMR re-ranking at the setting's weight;
5. + the self-tuned setting (``podrec tune --protocol time`` on the same lake, then unpinned).

Steps 0 and 1 differ in the engagement table: each evaluation rebuilds the days built under other
weights and reuses the rest (``podrec_app.runs``). The MMR trade-off (NDCG, intra-list diversity,
category calibration error per weight) is the last step's report.

    PODREC_LAKE_URI=… DAGSTER_HOME=… .venv/bin/python bench/quality_steps.py

Results: ``bench/results/quality_steps.json``: ``steps[i]`` = {name, time: {policy: metrics},
stratified: {…}, seconds}; ``rerank`` = the trade-off per weight and protocol; ``tune`` = its decision.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SEED_RULES = {
    "PODREC_ENGAGEMENT_TIME_WEIGHT": "0", "PODREC_ENGAGEMENT_EARLY_SKIP_MAX_S": "1e12",
    "PODREC_ALS_POOL_VARIANTS": "false", "PODREC_HYBRID_FOLLOW_WEIGHT": "0",
    "PODREC_HYBRID_RERANK_WEIGHT": "0", "PODREC_TUNING_PIN": "true",
}  # fmt: skip
# Each step: its name and the settings it takes back to the defaults as written.
STEPS = [
    ("seed rules", ()),
    ("+ duration-aware engagement", ("PODREC_ENGAGEMENT_TIME_WEIGHT", "PODREC_ENGAGEMENT_EARLY_SKIP_MAX_S")),
    ("+ variants pool their evidence", ("PODREC_ALS_POOL_VARIANTS",)),
    ("+ next episode of a followed show", ("PODREC_HYBRID_FOLLOW_WEIGHT",)),
    ("+ MMR re-ranking", ("PODREC_HYBRID_RERANK_WEIGHT",)),
    ("+ self-tuned setting", ("PODREC_TUNING_PIN",)),
]
METRICS = ("ndcg", "recall", "cold_recall", "new_variant_recall", "diversity", "calibration")
CLI = [sys.executable, "-m", "podrec_app.cli"]


def run(env: dict[str, str], *command: str) -> dict:
    done = subprocess.run([*CLI, *command, "--json"], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"podrec {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout[done.stdout.index("{") :])


def main() -> None:
    rules = dict(SEED_RULES)
    steps, rerank, decision = [], {}, None
    for name, restored in STEPS:
        for variable in restored:
            rules.pop(variable)
        env = {**os.environ, **rules}
        if name == "+ self-tuned setting":
            decision = run(env, "tune", "--no-ingest", "--protocol", "time")
        started = time.perf_counter()
        step: dict = {"name": name}
        for protocol in ("time", "stratified"):
            report = run(env, "evaluate", "--protocol", protocol, "--k", "10", "--no-ingest")
            step[protocol] = {
                p: {m: v.get(m) for m in METRICS}
                for p, v in report["policies"].items()
                if p in ("hybrid", "popular")
            }
            step[protocol]["hybrid_settings"] = report.get("hybrid")
            rerank[protocol] = {
                "weights": report.get("rerank"),
                "rule": report.get("recommended_rerank_weight"),
            }
        step["seconds"] = round(time.perf_counter() - started, 1)
        ndcg = {p: round(step[p]["hybrid"]["ndcg"], 4) for p in ("time", "stratified")}
        print(f"{name}: hybrid NDCG@10 {ndcg} ({step['seconds']} s)", flush=True)
        steps.append(step)
    result = {
        "lake": os.environ.get("PODREC_LAKE_URI"), "k": 10, "steps": steps, "rerank": rerank,
        "tune": None if decision is None else {k: decision.get(k) for k in ("accepted", "reason", "serving")},
        "cores": os.cpu_count(),
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quality_steps.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
