"""Locales, languages and language variants: one reading of each, for the batch side and serving.

docs/design.md, Language variants: at serving time one variant per canonical episode — the one in
the listener's language, else a configured fallback language, else the most-played variant.
``pick_variant`` is that rule; the lists (podrec/recsys/hybrid.py) and the API (api/lists.py)
both call it, and both read a locale with ``language_of``.
"""

from __future__ import annotations

from collections.abc import Sequence

UNDETERMINED = "und"  # BCP 47's tag for "language not known"


def language_of(locale: object) -> str:
    """``en-US``, ``en_us``, ``EN`` → ``en``; ``pt-BR`` → ``pt``; empty, missing or odd → ``und``."""
    if not isinstance(locale, str):
        return UNDETERMINED
    primary = locale.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else UNDETERMINED


def language_sql(column: str) -> str:
    """``language_of`` as a Spark SQL expression over a locale column (unknown → ``und``)."""
    primary = f"lower(split(trim(coalesce({column}, '')), '[-_]')[0])"
    return f"CASE WHEN {primary} RLIKE '^[a-z]{{2,3}}$' THEN {primary} ELSE '{UNDETERMINED}' END"


def pick_variant(
    languages: Sequence[str | None], plays: Sequence[float], language: str, fallback_language: str
) -> int | None:
    """Position of the variant to show: the listener's language, else the fallback language, else the
    most played; within a language the most played wins (the first on a tie)."""
    if not languages:
        return None
    for wanted in (language, fallback_language):
        same = [i for i, lang in enumerate(languages) if lang == wanted]
        if same:
            return max(same, key=lambda i: (plays[i], -i))
    return max(range(len(languages)), key=lambda i: (plays[i], -i))
