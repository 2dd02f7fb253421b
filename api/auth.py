"""Who is asking: bearer JWTs, checked with PyJWT once and then remembered until they expire.

Two kinds of caller, named by the token's ``scope`` claim (space-separated, as in OAuth 2):

- a **listener** (``podrec:listener``): ``sub`` is their listener id, under podrec's one id rule
  (podrec.ids); they read their own list only, and the episodes' neighbours;
- a **service** (``podrec:service``): a backend, the demo, ``podrec loop``, the benchmark; reads any
  list, the metrics too.

A token without either scope, without ``exp`` or ``sub``, expired, or signed by anyone else is refused.

Two ways to check a signature (``PODREC_API_AUTH``): ``hs256``, HMAC-SHA256 with
``PODREC_API_AUTH_KEY`` — minted once into ``<data dir>/secrets`` when unset, like the impressions
signing key, so ``podrec serve`` and ``podrec token`` on one machine agree with nothing typed; or
``jwks``, RS256 with the keys an identity provider publishes at ``PODREC_API_AUTH_JWKS_URL``
(PyJWT's ``PyJWKClient``: the key set is kept 5 minutes, and a token naming an unknown key makes it
re-read the set at most every 30 s, so forged key ids cannot flood the provider). ``iss`` and ``aud``
are checked when ``PODREC_API_AUTH_ISSUER`` / ``_AUDIENCE`` are set.

A signature check costs tens of microseconds (HS256) to a few hundred (RS256), a request from memory
about a millisecond: so a verified token is remembered (``TokenCache``, least recently used out,
keyed by the token's text) until its ``exp``, and never longer than ``TOKEN_CACHE_S``, the time a key
withdrawn from the provider's set takes to stop working anyway.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from pydantic import SecretStr

from podrec.ids import is_id
from podrec.privacy import masked_id
from podrec.settings import ApiSettings, PodrecSettings, mint_secret, secret_variable

Scope = Literal["listener", "service", "anonymous"]
LISTENER_SCOPE = "podrec:listener"
SERVICE_SCOPE = "podrec:service"
# PyJWKClient's own key-set lifespan: a verified token is trusted no longer than a withdrawn key is.
TOKEN_CACHE_S = 300.0
# Verified tokens kept per worker (a few hundred bytes each); past it, the least recently used go.
TOKEN_CACHE_ENTRIES = 10_000
# How far the issuer's clock and the API's may disagree on `exp`, `nbf` and `iat`.
LEEWAY_S = 30
# What PyJWT's refusals mean, in words that never quote the token.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token is for another audience"),
    (jwt.InvalidIssuerError, "the token is from another issuer"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token's algorithm is not accepted"),
    (jwt.PyJWKClientError, "no key of the identity provider matches the token"),
)


class Unauthenticated(Exception):
    """A token that proves nothing; the message is one line, safe to send back (it never quotes the token)."""


class KeysUnavailable(Exception):
    """The identity provider's keys could not be read: nobody new can be verified until it answers."""


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: ``masked`` is what logs show of the subject (podrec.privacy.masked_id)."""

    subject: str | None
    scope: Scope
    masked: str | None = None
    expires_at: float = math.inf

    def may_read_list_of(self, user_id: str) -> bool:
        """A listener reads their own list only; services (and everyone, with authentication off) any."""
        return self.scope != "listener" or self.subject == user_id

    def sees_private(self, user_id: str) -> bool:
        """Whether the answer may show what tells a listener's history: reasons quote an episode they
        heard, and ``known`` says whether they have a list. Only they and services see it."""
        return self.scope == "service" or (self.scope == "listener" and self.subject == user_id)


# Every caller when authentication is off: reads any list, never what is private to a listener.
ANONYMOUS = Principal(subject=None, scope="anonymous")


class TokenCache:
    """Verified tokens → their principal, each until ``Principal.expires_at``, the least recently used
    out beyond ``max_entries``. Thread-safe: verification of a JWKS token runs in a worker thread."""

    def __init__(self, max_entries: int = TOKEN_CACHE_ENTRIES, clock: Callable[[], float] = time.time):
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, Principal] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Principal | None:
        with self._lock:
            principal = self._entries.get(token)
            if principal is None:
                return None
            if principal.expires_at <= self._clock():
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return principal

    def put(self, token: str, principal: Principal) -> None:
        with self._lock:
            self._entries[token] = principal
            self._entries.move_to_end(token)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


class Verifier:
    """Checks bearer tokens the way ``PODREC_API_AUTH`` says, remembering those that pass."""

    def __init__(
        self,
        api: ApiSettings,
        key: bytes | None = None,
        jwks: jwt.PyJWKClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (key is None) == (jwks is None):
            raise ValueError("a Verifier checks with either an HMAC key or a JWKS client")
        self._key = key
        self._jwks = jwks
        self._algorithms = ["HS256"] if key is not None else ["RS256"]
        self._issuer = api.auth_issuer
        self._audience = api.auth_audience
        self._clock = clock
        self._required = ["exp", "sub"] + ["iss"] * bool(api.auth_issuer) + ["aud"] * bool(api.auth_audience)
        self.cache = TokenCache(clock=clock)

    @classmethod
    def from_settings(cls, settings: PodrecSettings) -> Verifier | None:
        """The verifier of ``settings.api.auth``, or None when authentication is off."""
        api = settings.api
        if api.auth == "off":
            return None
        if api.auth == "jwks":
            assert api.auth_jwks_url is not None  # ApiSettings refuses jwks without it
            return cls(api, jwks=jwt.PyJWKClient(api.auth_jwks_url, lifespan=TOKEN_CACHE_S, timeout=5))
        return cls(api, key=auth_key(settings))

    @property
    def needs_network(self) -> bool:
        """Whether verifying a new token may wait on the identity provider (so: not on the event loop)."""
        return self._jwks is not None

    def cached(self, token: str) -> Principal | None:
        return self.cache.get(token)

    def verify(self, token: str) -> Principal:
        """The token's principal (remembered for the next request), or ``Unauthenticated`` saying why."""
        try:
            key: Any = self._key if self._jwks is None else self._jwks.get_signing_key_from_jwt(token).key
            claims = jwt.decode(
                token, key, algorithms=self._algorithms, audience=self._audience, issuer=self._issuer,
                options={"require": self._required}, leeway=LEEWAY_S,
            )  # fmt: skip
        except jwt.PyJWKClientConnectionError as exc:
            raise KeysUnavailable("the identity provider's keys cannot be read; retry shortly") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the token has no {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), None)
            raise Unauthenticated(reason or "the token is malformed") from None
        principal = principal_of(claims, self._clock() + TOKEN_CACHE_S)
        self.cache.put(token, principal)
        return principal


def principal_of(claims: dict[str, Any], trust_until: float) -> Principal:
    """The caller a verified token's claims name, trusted until its ``exp`` or ``trust_until``."""
    subject = claims["sub"]
    if not is_id(subject):
        raise Unauthenticated("the token's subject is not a podrec id")
    scopes = str(claims.get("scope") or "").split()
    if SERVICE_SCOPE in scopes:
        scope: Scope = "service"
    elif LISTENER_SCOPE in scopes:
        scope = "listener"
    else:
        raise Unauthenticated(f"the token carries neither the {LISTENER_SCOPE} nor the {SERVICE_SCOPE} scope")
    return Principal(subject, scope, masked_id(subject), min(float(claims["exp"]), trust_until))


def auth_key(settings: PodrecSettings) -> bytes:
    """The HS256 key tokens are signed and checked with: ``PODREC_API_AUTH_KEY``, or else the one minted
    once into ``<data dir>/secrets`` (as ``impressions_signing_key`` does), so the API and ``podrec
    token`` of one machine agree. Called when a verifier or a token is made, never at import."""
    key = settings.api.auth_key
    if key is None:
        path = settings.data.path / "secrets" / secret_variable("api", "auth_key")
        key = SecretStr(mint_secret(path, lambda: secrets.token_urlsafe(32)))
    return key.get_secret_value().encode()


def mint_token(settings: PodrecSettings, subject: str, scope: Scope, expires_in_s: int) -> str:
    """A development token (``podrec token``, the demo, the loop, the benchmark, the tests), HS256 with
    the API's key; with ``jwks`` tokens come from the identity provider, and with ``off`` none is asked."""
    api = settings.api
    if api.auth != "hs256":
        raise ValueError(
            f"PODREC_API_AUTH={api.auth}: podrec mints tokens only for hs256 "
            + ("(get one from your identity provider)" if api.auth == "jwks" else "(the API asks for none)")
        )
    if scope == "anonymous" or not is_id(subject):
        raise ValueError("a token is a listener's or a service's, and its subject follows the id rule")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject, "scope": LISTENER_SCOPE if scope == "listener" else SERVICE_SCOPE,
        "iat": now, "exp": now + expires_in_s,
    }  # fmt: skip
    if api.auth_issuer:
        claims["iss"] = api.auth_issuer
    if api.auth_audience:
        claims["aud"] = api.auth_audience
    return jwt.encode(claims, auth_key(settings), algorithm="HS256")


def bearer(
    settings: PodrecSettings, subject: str, scope: Scope = "service", expires_in_s: int = 3600
) -> dict[str, str]:
    """The ``Authorization`` header of a client of the API under ``settings`` (none with auth off)."""
    if settings.api.auth == "off":
        return {}
    return {"Authorization": f"Bearer {mint_token(settings, subject, scope, expires_in_s)}"}
