"""Per-request list rules, free of HTTP and MongoDB so they can be tested on plain dicts.

docs/design.md, Language variants: one variant per canonical episode — the one in the caller's
language, else the configured fallback language, else the most-played variant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from podrec.language import UNDETERMINED, language_of, pick_variant

# A BCP 47-style locale: language, optionally a region or script (``it``, ``pt-BR``, ``es-419``, ``en_GB``).
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(?:[-_](?:[A-Za-z]{2}|[0-9]{3}|[A-Za-z]{4}))?$"

Variant = Mapping[str, Any]


def request_language(locale: str | None, default: str) -> str:
    """The batch side's reading of a locale (``pt-BR`` → ``pt``), or ``default`` without one.

    Request locales are validated by LOCALE_PATTERN at the HTTP layer; stored ones (from events)
    are read as leniently as the batch read them, so an odd one never turns into a 500."""
    language = language_of(locale)
    return default if language == UNDETERMINED else language


def choose_variant(variants: Iterable[Variant], language: str, fallback_language: str) -> Variant | None:
    variants = list(variants)
    chosen = pick_variant(
        [v.get("language") for v in variants], [v.get("plays", 0) for v in variants], language,
        fallback_language,
    )  # fmt: skip
    return None if chosen is None else variants[chosen]


def localise(
    items: Iterable[Mapping[str, Any]],
    language: str,
    fallback_language: str,
    k: int,
    exclude_canonical: str | None = None,
) -> list[dict[str, Any]]:
    """The first ``k`` items, each shown as its canonical episode's variant for ``language``.

    Items carry their variants (podrec.serving.documents); one without any keeps the episode the batch chose.
    Ranks are renumbered after duplicates (and ``exclude_canonical``) are dropped.
    """
    out: list[dict[str, Any]] = []
    seen = {exclude_canonical} if exclude_canonical else set()
    for item in items:
        canonical = item.get("canonical_episode_id") or item["episode_id"]
        if canonical in seen:
            continue
        seen.add(canonical)
        chosen = choose_variant(item.get("variants") or (), language, fallback_language)
        shown = {key: value for key, value in item.items() if key != "variants"}
        shown.update(canonical_episode_id=canonical, rank=len(out) + 1)
        if chosen is not None:
            shown.update(episode_id=chosen["episode_id"], language=chosen.get("language"),
                         title=chosen.get("title"))  # fmt: skip
        out.append(shown)
        if len(out) == k:
            break
    return out
