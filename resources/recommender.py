"""The recommender's knobs as one resource, so settings (env or podrec.toml) reach every model asset."""

from __future__ import annotations

from dagster import ConfigurableResource

from podrec.ab import ABPolicy
from podrec.als import AlsParams
from podrec.engagement import EngagementWeights
from podrec.hybrid import HybridParams
from podrec.settings import PodrecSettings


class RecommenderResource(ConfigurableResource):
    """Engagement weights, ALS, hybrid and A/B settings; defaults in podrec/settings.py."""

    listen_weight: float = 1.0
    complete_weight: float = 1.0
    like_weight: float = 2.0
    replay_weight: float = 0.25
    early_skip_weight: float = -1.0
    early_skip_fraction: float = 0.05
    bot_max_events_per_day: int = 3000
    als_alpha: float = 40.0
    als_reg_param: float = 0.08
    als_rank: int = 32
    als_max_iter: int = 10
    als_blocks: int = 4
    window_days: int = 28
    hybrid_als_weight: float = 0.7
    cold_start_strategy: str = "auto"
    full_weight_listeners: int = 20
    prior_neighbors: int = 20
    k: int = 10
    candidates: int = 200
    per_show_cap: int = 3
    fallback_language: str = "en"
    experiment_id: str = "hybrid-vs-als-1"
    hybrid_buckets: int = 50

    @classmethod
    def from_settings(cls, s: PodrecSettings) -> RecommenderResource:
        return cls(
            listen_weight=s.engagement_listen_weight, complete_weight=s.engagement_complete_weight,
            like_weight=s.engagement_like_weight, replay_weight=s.engagement_replay_weight,
            early_skip_weight=s.engagement_early_skip_weight, early_skip_fraction=s.early_skip_fraction,
            bot_max_events_per_day=s.bot_max_events_per_day, als_alpha=s.als_alpha,
            als_reg_param=s.als_reg_param, als_rank=s.als_rank, als_max_iter=s.als_max_iter,
            als_blocks=s.als_blocks, window_days=s.als_window_days, hybrid_als_weight=s.hybrid_als_weight,
            cold_start_strategy=s.cold_start_strategy,
            full_weight_listeners=s.cold_start_full_weight_listeners,
            prior_neighbors=s.cold_start_prior_neighbors, k=s.recommendations_k,
            candidates=s.recommendations_candidates, per_show_cap=s.per_show_cap,
            fallback_language=s.fallback_language, experiment_id=s.experiment_id,
            hybrid_buckets=s.ab_hybrid_buckets,
        )  # fmt: skip

    def engagement_weights(self) -> EngagementWeights:
        return EngagementWeights(
            listen=self.listen_weight, complete=self.complete_weight, like=self.like_weight,
            replay=self.replay_weight, early_skip=self.early_skip_weight,
            early_skip_fraction=self.early_skip_fraction,
        )  # fmt: skip

    def als_params(self, **overrides: float | int | None) -> AlsParams:
        """ALS settings; ``overrides`` that are not None win (asset config, ``podrec tune``)."""
        base = {
            "rank": self.als_rank, "max_iter": self.als_max_iter, "reg_param": self.als_reg_param,
            "alpha": self.als_alpha, "blocks": self.als_blocks,
        }  # fmt: skip
        return AlsParams(**{**base, **{k: v for k, v in overrides.items() if v is not None}})

    def hybrid_params(self, cold_start: str | None = None) -> HybridParams:
        """``auto`` (the evaluation's pick, resolved by the recommendations asset) reads as ``factor``."""
        strategy = cold_start or self.cold_start_strategy
        strategy = "factor" if strategy == "auto" else strategy
        return HybridParams(
            k=self.k, als_weight=self.hybrid_als_weight, cold_start=strategy,
            full_weight_listeners=self.full_weight_listeners, prior_neighbors=self.prior_neighbors,
            candidates=self.candidates, per_show_cap=self.per_show_cap,
            fallback_language=self.fallback_language,
        )  # fmt: skip

    def ab_policy(self) -> ABPolicy:
        return ABPolicy(experiment_id=self.experiment_id, hybrid_buckets=self.hybrid_buckets)
