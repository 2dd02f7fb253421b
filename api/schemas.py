"""Response shapes: what the OpenAPI docs at /docs show a client."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Item(BaseModel):
    rank: int
    episode_id: str = Field(description="The variant shown: the caller's language where one exists.")
    canonical_episode_id: str
    language: str | None = None
    title: str | None = None
    score: float | None = Field(None, description="Blended score the list was ranked by.")
    reason: str | None = Field(
        None,
        description="Why it is on the list, in words a listener reads (it may quote an episode they heard).",
    )
    propensity: float | None = Field(
        None, description="With exploration on: the probability this item was shown at this place."
    )
    explored: bool | None = Field(None, description="With exploration on: a new episode served at random.")


class RecommendationList(BaseModel):
    user_id: str
    known: bool | None = Field(
        description=(
            "Whether the listener has a list of their own in this version; null to anyone but the listener "
            "and services (only with authentication off), as are source, note and every reason."
        )
    )
    source: Literal["personal", "popular"] | None
    policy: str = Field(description="The A/B arm the listener is in: hybrid or als_only.")
    bucket: int = Field(ge=0, le=99)
    experiment_id: str
    model_version: str | None
    serving_version: str = Field(description="The MongoDB publish this list was read from.")
    rec_date: str
    language: str = Field(description="Language the variants were chosen for.")
    items: list[Item]
    note: str | None = None
    impression_id: str = Field(description="This served list; an event that follows it may carry the id.")


class SimilarItem(BaseModel):
    rank: int
    episode_id: str
    canonical_episode_id: str
    language: str | None = None
    title: str | None = None
    similarity: float


class SimilarList(BaseModel):
    episode_id: str
    serving_version: str
    language: str
    items: list[SimilarItem]


class Health(BaseModel):
    status: Literal["ok"]


class Metrics(BaseModel):
    impressions: dict[str, int] = Field(
        description="logged = delivered + dropped + undelivered + waiting; capacity of each buffer."
    )
    impressions_undelivered: dict[str, int] = Field(
        default_factory=dict, description="The undelivered impressions by reason, e.g. refused credentials."
    )
    impressions_problem: str | None = Field(
        None, description="What keeps Kafka from taking impressions now (refused credentials), or null."
    )


class Ready(BaseModel):
    status: Literal["ready"]
    serving_version: str


class Problem(BaseModel):
    detail: str
    error: str | None = None
