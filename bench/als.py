"""ALS training and recommendation, podrec (Spark ML ALS + podrec's scoring) beside `implicit`.

Same data, same run: ``--interactions`` synthetic implicit interactions (default 1M: 50k users x
10k episodes, drawn from a low-rank taste model with a popularity skew), 20% of each user's held
out. Both fit rank 32, 10 iterations, regularisation 0.08, alpha 40; both then list the top 10
unseen episodes for every user, and NDCG@10 is taken on the held-out part.

    .venv/bin/python bench/als.py [--users 50000 --items 10000 --per-user 20]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from podrec.recsys.als import ItemFactors, fit
from podrec.recsys.hybrid import ItemSide
from podrec.recsys.metrics import ndcg_at_k
from podrec.recsys.scoring import build_episode_index, episode_stats, recommend_in_spark, user_frame
from podrec.settings import AbSettings, AlsSettings, HybridSettings

RESULTS = Path(__file__).parent / "results"


def synthesize(users: int, items: int, per_user: int, seed: int = 0) -> pd.DataFrame:
    """Each user's ``per_user`` episodes drawn without replacement from softmax(taste·traits + pop)."""
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(users, 16)).astype(np.float32)
    traits = rng.normal(size=(items, 16)).astype(np.float32) * 0.6
    popularity = rng.normal(scale=1.0, size=items).astype(np.float32)
    chosen = []
    for start in range(0, users, 2048):
        logits = taste[start : start + 2048] @ traits.T + popularity
        gumbel = -np.log(-np.log(rng.random(logits.shape, dtype=np.float32) + 1e-9) + 1e-9)
        chosen.append(np.argpartition(-(logits + gumbel), per_user, axis=1)[:, :per_user])
    picks = np.concatenate(chosen)
    user_idx = np.repeat(np.arange(users), per_user)
    rating = rng.choice([4.0, 2.0, 1.0, 0.5], p=[0.3, 0.3, 0.2, 0.2], size=len(user_idx))
    return pd.DataFrame(
        {"user_id": [f"u{u:06d}" for u in user_idx], "episode_id": [f"e{i:05d}" for i in picks.ravel()],
         "rating": rating, "completed": False, "locale": None}
    )  # fmt: skip


def holdout(data: pd.DataFrame, seed: int = 1) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    test = data.sample(frac=0.2, random_state=seed)
    train = data.drop(test.index)
    truth = test.groupby("user_id")["episode_id"].apply(set).to_dict()
    return train, truth


def mean_ndcg(lists: dict[str, list[str]], truth: dict[str, set[str]]) -> float:
    return float(np.mean([ndcg_at_k(lists.get(u, []), relevant, 10) for u, relevant in truth.items()]))


def bench_podrec(train: pd.DataFrame, truth: dict[str, set[str]], params: AlsSettings) -> dict:
    from dagster_pyspark.resources import spark_session_from_config

    from podrec.lake.spark import spark_conf
    from podrec.settings import load_settings

    started = time.perf_counter()
    spark = spark_session_from_config(
        spark_conf(load_settings(spark={"master": "local[2]"}), app_name="bench-als")
    )
    jvm_s = time.perf_counter() - started
    schema = "user_id string, episode_id string, rating double, completed boolean, locale string"
    interactions = spark.createDataFrame(
        train[["user_id", "episode_id", "rating", "completed", "locale"]], schema
    )
    interactions = interactions.cache()
    interactions.count()
    started = time.perf_counter()
    fitted = fit(interactions.select("user_id", "episode_id", "rating"), params)
    fit_s = time.perf_counter() - started
    # What the daily asset does: the item side on the driver, every listener's frame in Spark…
    started = time.perf_counter()
    index = build_episode_index(episode_stats(interactions))
    rules = HybridSettings(k=10, per_show_cap=10, cold_start="factor")
    items = ItemSide.build(
        index, ItemFactors.collect(fitted.item_factors(), "episode_id").aligned(index.ids), rules
    )
    everyone_als_only = AbSettings(hybrid_buckets=0)
    users = user_frame(interactions, index, fitted.user_factors(), everyone_als_only, exclude="seen").cache()
    users.count()
    prepare_s = time.perf_counter() - started
    # …then every list scored by the executors.
    started = time.perf_counter()
    out = recommend_in_spark(users, items).select("user_id", "rank", "episode_id").toPandas()
    recommend_s = time.perf_counter() - started
    lists = {u: g.sort_values("rank")["episode_id"].tolist() for u, g in out.groupby("user_id", sort=False)}
    # Spark's own top-K for all users, for reference (not what podrec serves: no exclusion of seen).
    started = time.perf_counter()
    fitted.model.recommendForAllUsers(10).count()
    spark_recommend_s = time.perf_counter() - started
    return {
        "jvm_start_s": round(jvm_s, 2), "fit_s": round(fit_s, 2), "prepare_s": round(prepare_s, 2),
        "recommend_s": round(recommend_s, 2), "spark_recommendForAllUsers_s": round(spark_recommend_s, 2),
        "ndcg_at_10": round(mean_ndcg(lists, truth), 5),
    }  # fmt: skip


def bench_implicit(train: pd.DataFrame, truth: dict[str, set[str]], params: AlsSettings) -> dict:
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    users = {u: i for i, u in enumerate(sorted(train["user_id"].unique()))}
    items = np.array(sorted(train["episode_id"].unique()))
    item_index = {e: i for i, e in enumerate(items)}
    matrix = sp.csr_matrix(
        (
            train["rating"].to_numpy(np.float32),
            (train["user_id"].map(users), train["episode_id"].map(item_index)),
        ),
        shape=(len(users), len(items)),
    )
    model = AlternatingLeastSquares(
        factors=params.rank, regularization=params.reg_param, alpha=params.alpha, iterations=params.max_iter,
        random_state=params.seed, calculate_training_loss=False,
    )  # fmt: skip
    # implicit's own advice: single-threaded BLAS inside its fit (it runs its own threads).
    with threadpool_limits(1, "blas"):
        started = time.perf_counter()
        model.fit(matrix, show_progress=False)
        fit_s = time.perf_counter() - started
    started = time.perf_counter()
    ids, _ = model.recommend(np.arange(len(users)), matrix, N=10, filter_already_liked_items=True)
    recommend_s = time.perf_counter() - started
    names = list(users)
    lists = {names[u]: items[ids[u]].tolist() for u in range(len(names))}
    return {
        "fit_s": round(fit_s, 2),
        "recommend_s": round(recommend_s, 2),
        "ndcg_at_10": round(mean_ndcg(lists, truth), 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--per-user", type=int, default=20)
    args = parser.parse_args()
    params = AlsSettings(rank=32, max_iter=10, reg_param=0.08, alpha=40.0, blocks=4)
    data = synthesize(args.users, args.items, args.per_user)
    train, truth = holdout(data)
    print(f"{len(data):,} interactions, {args.users:,} users x {args.items:,} episodes; train {len(train):,}")
    peer = bench_implicit(train, truth, params)
    print("implicit:", peer)
    ours = bench_podrec(train, truth, params)
    print("podrec:  ", ours)
    result = {
        "interactions": len(data), "users": args.users, "items": args.items, "params": params.model_dump(),
        "cores": os.cpu_count(), "implicit": peer, "podrec": ours,
        "ratio_fit_podrec_over_implicit": round(ours["fit_s"] / peer["fit_s"], 2),
        "ratio_recommend_podrec_over_implicit": round(ours["recommend_s"] / peer["recommend_s"], 2),
        "ratio_prepare_and_recommend_podrec_over_implicit": round(
            (ours["prepare_s"] + ours["recommend_s"]) / peer["recommend_s"], 2
        ),
        "ratio_ndcg_podrec_over_implicit": round(ours["ndcg_at_10"] / peer["ndcg_at_10"], 4),
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "als.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k.startswith("ratio")}))


if __name__ == "__main__":
    main()
