"""The recommender's knobs as one resource, so settings (env or podrec.toml) reach every model asset."""

from __future__ import annotations

from dagster import ConfigurableResource

from podrec.recsys.ab import ABPolicy
from podrec.recsys.als import AlsParams
from podrec.recsys.engagement import EngagementWeights
from podrec.recsys.hybrid import HybridParams
from podrec.settings import PodrecSettings


class RecommenderResource(ConfigurableResource):
    """Engagement weights, ALS, hybrid and A/B settings; defaults in podrec/settings.py."""

    # Defaults come from the plain dataclasses, so each default is written once.
    listen_weight: float = EngagementWeights.listen
    complete_weight: float = EngagementWeights.complete
    like_weight: float = EngagementWeights.like
    replay_weight: float = EngagementWeights.replay
    early_skip_weight: float = EngagementWeights.early_skip
    early_skip_fraction: float = EngagementWeights.early_skip_fraction
    bot_max_events_per_day: int = 3000
    als_alpha: float = AlsParams.alpha
    als_reg_param: float = AlsParams.reg_param
    als_rank: int = AlsParams.rank
    als_max_iter: int = AlsParams.max_iter
    als_blocks: int = AlsParams.blocks
    window_days: int = 28
    hybrid_als_weight: float = HybridParams.als_weight
    cold_start_strategy: str = "auto"
    full_weight_listeners: int = HybridParams.full_weight_listeners
    prior_neighbors: int = HybridParams.prior_neighbors
    k: int = HybridParams.k
    candidates: int = HybridParams.candidates
    per_show_cap: int = HybridParams.per_show_cap
    fallback_language: str = HybridParams.fallback_language
    experiment_id: str = ABPolicy.experiment_id
    hybrid_buckets: int = ABPolicy.hybrid_buckets

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
