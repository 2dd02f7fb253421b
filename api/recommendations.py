"""``/users/{user_id}/recommendations``: a listener's list in their A/B arm, logged as an impression.

The arm is assigned here with the batch side's own function (podrec.recsys.ab), so a listener's list
and its label cannot disagree: a stored list made for another arm or experiment is not served (the
popular list is, with a note). Every list served is an impression: its id is in the answer (events
that follow it may carry it), and it is queued for Kafka without waiting for the broker. With
exploration on (``PODREC_EXPLORATION_SHARE``), a share of lists carries new episodes in its last
places, and every item its propensity (podrec.serving.exploration).
"""

# No `from __future__ import annotations`: FastAPI reads the route's Annotated parameters at runtime,
# and their bounds come from settings.
import random
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query

from api.auth import Principal
from api.gate import forbidden
from api.lists import LOCALE_PATTERN, localise, request_language
from api.operations import REFUSED, UNAVAILABLE
from api.schemas import RecommendationList
from api.serving import Serving, memory_first
from podrec.ids import API_ID_PATTERN as ID_PATTERN
from podrec.ingest.impressions import Impression
from podrec.recsys.ab import assign
from podrec.serving.exploration import explore

# Impression ids from a client's request id: a retried request is the same impression (ingestion keeps one).
REQUEST_NAMESPACE = uuid.UUID("6f1d5f7e-2c1a-4c36-9a57-0d6b3f0f2a11")


def without_private(answer: RecommendationList) -> RecommendationList:
    """The list as a caller who is neither its listener nor a service sees it (only with authentication
    off): no reasons (each quotes an episode the listener heard), nothing that tells whether the
    listener has a list of their own (``known``, ``source``, ``note``)."""
    items = [item.model_copy(update={"reason": None}) for item in answer.items]
    return answer.model_copy(update={"items": items, "known": None, "source": None, "note": None})


def impression_of(answer: RecommendationList, locale: str | None, served_at: datetime) -> Impression:
    served: list[dict[str, Any]] = [
        {"episode_id": i.episode_id, "rank": i.rank, "propensity": i.propensity, "explored": i.explored}
        for i in answer.items
    ]
    return Impression(
        user_id=answer.user_id, served_version=answer.serving_version, experiment_id=answer.experiment_id,
        bucket=answer.bucket, policy=answer.policy, source=answer.source, locale=locale,
        model_version=answer.model_version, served_at=served_at, items=served,
        impression_id=answer.impression_id,
    )  # fmt: skip


def recommendations_router(serving: Serving) -> APIRouter:
    router = APIRouter(tags=["recommendations"])
    store, settings = serving.store, serving.settings
    ab, exploration = settings.ab, settings.exploration
    fallback_language, max_k = settings.hybrid.fallback_language, settings.hybrid.k
    Caller = Annotated[Principal, Depends(serving.gate.caller)]

    @router.get(
        "/users/{user_id}/recommendations",
        response_model=RecommendationList,
        responses={**REFUSED, **UNAVAILABLE},
    )
    async def recommendations(
        caller: Caller,
        user_id: Annotated[str, Path(pattern=ID_PATTERN, description="Listener id.")],
        locale: Annotated[
            str | None,
            Query(pattern=LOCALE_PATTERN, description="e.g. it-IT; default: the listener's own locale."),
        ] = None,
        k: Annotated[int, Query(ge=1, le=max_k, description="List length.")] = max_k,
        x_request_id: Annotated[
            str | None,
            Header(pattern=ID_PATTERN, description="A retried request with this id is the same impression."),
        ] = None,
    ) -> RecommendationList:
        """The listener's next episodes, one language variant per episode, in their A/B arm.

        A listener's token reads their own list only (403 otherwise); a service's reads any. A listener
        without a list of their own gets the popular list of their locale's language. The answer's
        ``impression_id`` identifies this list; events that follow it may carry it."""
        if not caller.may_read_list_of(user_id):
            raise forbidden("a listener's token reads only that listener's own list")
        impression_id = str(
            uuid.uuid5(REQUEST_NAMESPACE, f"{user_id}/{x_request_id}") if x_request_id else uuid.uuid4()
        )
        answer = await memory_first(
            lambda memory_only: user_recommendations(user_id, locale, k, impression_id, memory_only)
        )
        return answer if caller.sees_private(user_id) else without_private(answer)

    def user_recommendations(
        user_id: str, locale: str | None, k: int, impression_id: str, memory_only: bool
    ) -> RecommendationList:
        served_at = serving.clock()
        version = store.active_version(memory_only)
        bucket, policy = assign(user_id, ab)
        doc, note = store.user_list(version, user_id, memory_only), None
        known = doc is not None
        language = request_language(locale or (doc or {}).get("locale"), fallback_language)
        if doc is not None and (doc.get("policy"), doc.get("experiment_id")) != (policy, ab.experiment_id):
            note = (
                f"the stored list is for {doc.get('policy')}/{doc.get('experiment_id')}, not this listener's "
                f"arm {policy}/{ab.experiment_id}: serving the popular list until the next publish"
            )
            doc = None
        source = "personal" if doc is not None else "popular"
        if doc is None:
            doc = store.popular_list(version, [language, fallback_language], memory_only)
            if doc is None:
                raise HTTPException(404, detail=f"version {version} holds no popular list")
        items = localise(doc["items"], language, fallback_language, k)
        if exploration.share > 0:
            since = served_at - timedelta(days=ab.new_episode_days)
            pool = [e for e in store.new_episodes(version, since, memory_only) if e["language"] == language]
            items = explore(items, pool, exploration.share, exploration.slots, random.Random(impression_id))
        answer = RecommendationList(
            user_id=user_id, known=known, source=source, policy=policy, bucket=bucket,
            experiment_id=ab.experiment_id, model_version=doc.get("model_version"),
            serving_version=version, rec_date=doc["rec_date"], language=language, items=items, note=note,
            impression_id=impression_id,
        )  # fmt: skip
        serving.impressions.log(impression_of(answer, locale, served_at))
        return answer

    return router
