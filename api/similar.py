"""``/episodes/{episode_id}/similar``: episodes about the same things, by transcript similarity."""

# No `from __future__ import annotations`: FastAPI reads the route's Annotated parameters at runtime,
# and their bounds come from settings.
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from api.auth import Principal
from api.lists import LOCALE_PATTERN, localise, request_language
from api.operations import REFUSED, UNAVAILABLE
from api.schemas import Problem, SimilarList
from api.serving import Serving, memory_first
from podrec.ids import API_ID_PATTERN as ID_PATTERN


def similar_router(serving: Serving) -> APIRouter:
    router = APIRouter(tags=["episodes"])
    store = serving.store
    fallback_language, max_k = serving.settings.hybrid.fallback_language, serving.settings.hybrid.k
    Caller = Annotated[Principal, Depends(serving.gate.caller)]

    @router.get(
        "/episodes/{episode_id}/similar",
        response_model=SimilarList,
        responses={404: {"model": Problem}, **REFUSED, **UNAVAILABLE},
    )
    async def similar(
        _: Caller,
        episode_id: Annotated[str, Path(pattern=ID_PATTERN, description="Episode id (any variant).")],
        locale: Annotated[
            str | None, Query(pattern=LOCALE_PATTERN, description="Default: the episode's language.")
        ] = None,
        k: Annotated[int, Query(ge=1, le=max_k)] = max_k,
    ) -> SimilarList:
        """Episodes about the same things, by transcript similarity; never another variant of this one."""
        return await memory_first(lambda memory_only: similar_episodes(episode_id, locale, k, memory_only))

    def similar_episodes(episode_id: str, locale: str | None, k: int, memory_only: bool) -> SimilarList:
        version = store.active_version(memory_only)
        episode = store.episode(version, episode_id, memory_only)
        if episode is None:
            raise HTTPException(404, detail=f"no episode {episode_id} in serving version {version}")
        doc = store.similar(version, episode_id, memory_only) or {"items": []}
        language = request_language(locale or episode.get("language"), fallback_language)
        items = localise(doc["items"], language, fallback_language, k,
                         exclude_canonical=episode["canonical_episode_id"])  # fmt: skip
        return SimilarList(episode_id=episode_id, serving_version=version, language=language, items=items)

    return router
