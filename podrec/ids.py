"""The one rule for an id, at every door: events, impressions, imported logs, the API and ``forget``.

An id is a letter or digit, then up to 127 of letters, digits and ``_ . : @ -``. That leaves out
everything that could be read as something else downstream — a MongoDB operator (``$where``), a
path (``../../etc``), a space, a control character, an emoji — and the keys podrec makes for itself:
the popular lists (``__popular__/<language>``) and a forgotten listener's placeholder in a saved
model (``__forgotten__/<index>``) begin with ``_``, which no id can. Those prefixes are named below
as well, so a rejection says what the id collided with rather than only that it broke the pattern.

The rule is written three ways from one body: ``is_id`` for Python (``re.fullmatch``: ``$`` would
let a trailing newline through), ``SPARK_ID_REGEX`` for Spark's ``rlike`` (Java's ``\\z``, the true
end), and ``API_ID_PATTERN`` for FastAPI's path and header parameters (pydantic's Rust regex, whose
``$`` is the end of the text).
"""

from __future__ import annotations

import re

ID_BODY = r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}"
ID_RULE = "a letter or digit, then up to 127 of letters, digits and _ . : @ -"
API_ID_PATTERN = f"^{ID_BODY}$"
SPARK_ID_REGEX = f"^{ID_BODY}\\z"
_ID = re.compile(ID_BODY)

POPULAR_USER_PREFIX = "__popular__/"
FORGOTTEN_PREFIX = "__forgotten__/"
# Keys podrec writes where listener ids live; refused at ingest whatever the pattern allows.
RESERVED_PREFIXES = (POPULAR_USER_PREFIX, FORGOTTEN_PREFIX)
# The identity fields of the wire formats: what joins, keys and serves by these must be an id.
EVENT_ID_FIELDS = ("event_id", "user_id", "episode_id", "impression_id")


def is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def id_error(name: str, value: object) -> str | None:
    """None for a good id, else the reason it is refused (never quoting the value: it is untrusted)."""
    if isinstance(value, str) and value.startswith(RESERVED_PREFIXES):
        return f"reserved id: {name} starts with a prefix podrec keeps for itself"
    if not is_id(value):
        return f"bad id: {name} must be {ID_RULE}"
    return None
