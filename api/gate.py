"""Who may pass: the FastAPI dependencies routes declare, in the order that keeps refusals cheap.

1. the client address's bucket (api.limits) — for every request but a verified service's, so a flood
   of made-up tokens is refused before any signature is checked: 429;
2. the token (api.auth): missing or not verifying, 401 with ``WWW-Authenticate: Bearer``; a token
   seen before costs a dictionary lookup;
3. the subject's bucket: 429.

Each refusal is one line of JSON (``{"detail": …}``) and happens before the route runs, so a refused
request logs no impression. The route then decides what the principal may read (403: another
listener's list) — ``Principal.may_read_list_of``. The principal is left on ``request.state`` for the
access log, which shows it only as a hash.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.auth import ANONYMOUS, KeysUnavailable, Principal, Unauthenticated, Verifier
from api.limits import RateLimits, TokenBuckets, retry_after

# auto_error=False: a missing token is this module's 401 (with its header), not FastAPI's 403.
BEARER = HTTPBearer(auto_error=False, description="A JWT: `podrec token` mints development ones.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]
CHALLENGE = 'Bearer realm="podrec"'


def unauthenticated(detail: str, invalid: bool) -> HTTPException:
    challenge = f'{CHALLENGE}, error="invalid_token"' if invalid else CHALLENGE
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": challenge})


def forbidden(detail: str) -> HTTPException:
    return HTTPException(
        403, detail=detail, headers={"WWW-Authenticate": f'{CHALLENGE}, error="insufficient_scope"'}
    )


def charge(buckets: TokenBuckets | None, key: str, who: str) -> None:
    if buckets is not None and (wait := buckets.take(key)) > 0:
        raise HTTPException(
            429,
            detail=f"rate limit: too many requests {who}; retry later",
            headers={"Retry-After": retry_after(wait)},
        )


def address_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class Gate:
    """The dependencies: ``caller`` (any token), ``service`` (a service token), ``address`` (no token,
    limited per address). ``verifier`` None is authentication off: everyone is ``ANONYMOUS``."""

    def __init__(self, verifier: Verifier | None, limits: RateLimits) -> None:
        self.verifier = verifier
        self.limits = limits

    async def caller(self, request: Request, credentials: Credentials) -> Principal:
        verifier = self.verifier
        if verifier is None:
            charge(self.limits.address, address_of(request), "from this address")
            principal = ANONYMOUS
        else:
            token = credentials.credentials if credentials else None
            principal = verifier.cached(token) if token else None
            if principal is None or principal.scope != "service":
                charge(self.limits.address, address_of(request), "from this address")
            if principal is None:
                if token is None:
                    raise unauthenticated("a bearer token is required (Authorization: Bearer <token>)", False)
                principal = await verified(verifier, token)
            buckets = self.limits.service if principal.scope == "service" else self.limits.listener
            charge(buckets, principal.subject or "", "for this token")
        request.state.principal = principal
        return principal

    async def service(self, request: Request, credentials: Credentials) -> Principal:
        principal = await self.caller(request, credentials)
        if principal.scope == "listener":
            raise forbidden("this route needs a service token")
        return principal

    async def address(self, request: Request) -> None:
        charge(self.limits.address, address_of(request), "from this address")


async def verified(verifier: Verifier, token: str) -> Principal:
    """The token's principal; a JWKS check, which may wait on the identity provider, in a thread."""
    try:
        if verifier.needs_network:
            return await run_in_threadpool(verifier.verify, token)
        return verifier.verify(token)
    except Unauthenticated as exc:
        raise unauthenticated(str(exc), invalid=True) from None
    except KeysUnavailable as exc:
        raise HTTPException(503, detail=str(exc), headers={"Retry-After": "5"}) from None
