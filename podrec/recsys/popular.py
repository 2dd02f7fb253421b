"""The lists for listeners without history: one per language, stored under this user-id prefix.

A module of its own so the API can name them without importing the scoring machinery.
"""

POPULAR_USER_PREFIX = "__popular__/"
