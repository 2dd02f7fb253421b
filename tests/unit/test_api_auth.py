"""Bearer tokens on their own (api.auth): what verifies, what is refused and why, what is remembered and
for how long, and RS256 through a JWKS served on loopback as an identity provider would."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from api.auth import (
    ANONYMOUS,
    LISTENER_SCOPE,
    SERVICE_SCOPE,
    TOKEN_CACHE_S,
    KeysUnavailable,
    Principal,
    TokenCache,
    Unauthenticated,
    Verifier,
    auth_key,
    bearer,
    mint_token,
)
from podrec.privacy import masked_id
from podrec.settings import ApiSettings, PodrecSettings, SettingsError, load_settings

KEY = b"k" * 32


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PodrecSettings:
    for var in ("PODREC_API_AUTH", "PODREC_API_AUTH_KEY", "PODREC_SECRETS_DIR", "PODREC_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    return load_settings(data={"dir": str(tmp_path / "data")})


def signed(claims: dict, key: bytes = KEY, **headers: str) -> str:
    return jwt.encode(claims, key, algorithm="HS256", headers=headers or None)


def claims(sub: str = "u1", scope: str = LISTENER_SCOPE, exp_in: float = 60, **more: object) -> dict:
    return {"sub": sub, "scope": scope, "exp": int(time.time() + exp_in), **more}


def test_a_listener_and_a_service_token_verify_to_their_principals() -> None:
    verifier = Verifier(ApiSettings(), key=KEY)
    listener = verifier.verify(signed(claims("u1")))
    assert (listener.subject, listener.scope, listener.masked) == ("u1", "listener", masked_id("u1"))
    service = verifier.verify(signed(claims("backend-1", f"openid {SERVICE_SCOPE}")))
    assert (service.subject, service.scope) == ("backend-1", "service")


# Each token is made as its case runs, not when the suite is collected: the valid ones expire in 60 s,
# and a long suite reaches this module more than a minute after collecting it.
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: signed(claims(exp_in=-120)), "the token has expired"),
        (lambda: signed(claims(), key=b"x" * 32), "the token's signature does not verify"),
        (lambda: signed({"sub": "u1", "scope": LISTENER_SCOPE}), "the token has no exp claim"),
        (
            lambda: signed({"scope": LISTENER_SCOPE, "exp": int(time.time()) + 60}),
            "the token has no sub claim",
        ),
        (
            lambda: signed(claims(scope="openid profile")),
            "neither the podrec:listener nor the podrec:service scope",
        ),
        (lambda: signed(claims(sub="__popular__/en")), "the token's subject is not a podrec id"),
        (lambda: signed(claims(sub='{"$gt": ""}')), "the token's subject is not a podrec id"),
        (lambda: jwt.encode(claims(), None, algorithm="none"), "the token's algorithm is not accepted"),
        (lambda: "not.a.token", "the token is malformed"),
    ],
)
def test_a_token_that_proves_nothing_is_refused_saying_why_without_quoting_it(
    make: Callable[[], str], reason: str
) -> None:
    token = make()
    with pytest.raises(Unauthenticated) as refused:
        Verifier(ApiSettings(), key=KEY).verify(token)
    assert reason in str(refused.value) and token not in str(refused.value)


def test_issuer_and_audience_are_checked_when_configured() -> None:
    api = ApiSettings(auth_issuer="https://id.example", auth_audience="podrec")
    verifier = Verifier(api, key=KEY)
    good = claims(iss="https://id.example", aud="podrec")
    assert verifier.verify(signed(good)).subject == "u1"
    with pytest.raises(Unauthenticated, match="another issuer"):
        verifier.verify(signed({**good, "iss": "https://evil.example"}))
    with pytest.raises(Unauthenticated, match="another audience"):
        verifier.verify(signed({**good, "aud": "someone-else"}))
    with pytest.raises(Unauthenticated, match="no aud claim"):
        verifier.verify(signed(claims(iss="https://id.example")))


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_verified_token_is_remembered_until_it_expires_and_never_past_token_cache_s() -> None:
    clock = Clock()
    verifier = Verifier(ApiSettings(), key=KEY, clock=clock)
    short, long = signed(claims("u1", exp_in=30)), signed(claims("u2", exp_in=3600))
    assert verifier.cached(short) is None
    first = verifier.verify(short)
    verifier.verify(long)
    assert verifier.cached(short) is first and len(verifier.cache) == 2
    clock.now += 31  # past its exp: no longer remembered
    assert verifier.cached(short) is None and verifier.cached(long) is not None
    clock.now += TOKEN_CACHE_S  # the long one is trusted at most TOKEN_CACHE_S without a new check
    assert verifier.cached(long) is None


def test_the_token_cache_keeps_to_its_size_least_recently_used_out() -> None:
    cache = TokenCache(max_entries=2)
    principals = {name: Principal(name, "listener", expires_at=time.time() + 60) for name in "abc"}
    cache.put("a", principals["a"])
    cache.put("b", principals["b"])
    assert cache.get("a") is principals["a"]  # b is now the least recently used
    cache.put("c", principals["c"])
    assert [cache.get(t) is not None for t in "abc"] == [True, False, True]


def test_who_reads_which_list_and_who_sees_what_is_private_to_a_listener() -> None:
    own = Principal("u1", "listener")
    service = Principal("backend", "service")
    # (reads u1's list, sees u1's reasons and known) for each caller
    assert [(p.may_read_list_of("u1"), p.sees_private("u1")) for p in (own, service, ANONYMOUS)] == [
        (True, True), (True, True), (True, False),
    ]  # fmt: skip
    other = Principal("u2", "listener")
    assert (other.may_read_list_of("u1"), other.sees_private("u1")) == (False, False)


def test_the_hs256_key_is_minted_once_into_the_data_folder_and_shared(settings: PodrecSettings) -> None:
    minted = settings.data.path / "secrets" / "PODREC_API_AUTH_KEY"
    assert not minted.exists()
    key = auth_key(settings)
    assert len(key) >= 32 and minted.read_bytes().strip() == key and minted.stat().st_mode & 0o077 == 0
    assert auth_key(settings) == key  # a second process on the same folder reads the same key
    token = mint_token(settings, "u1", "listener", 60)
    assert Verifier.from_settings(settings).verify(token).subject == "u1"
    operator = settings.with_(api={"auth_key": "o" * 40})
    assert auth_key(operator) == b"o" * 40
    with pytest.raises(Unauthenticated, match="signature"):
        Verifier.from_settings(operator).verify(token)


def test_a_short_key_or_jwks_without_its_url_is_refused_without_echoing_the_key(monkeypatch) -> None:
    monkeypatch.setenv("PODREC_API_AUTH_KEY", "too-short-secret")
    with pytest.raises(SettingsError) as short:
        load_settings()
    assert "at least 32 characters" in str(short.value) and "too-short-secret" not in str(short.value)
    monkeypatch.delenv("PODREC_API_AUTH_KEY")
    monkeypatch.setenv("PODREC_API_AUTH", "jwks")
    with pytest.raises(SettingsError, match="needs PODREC_API_AUTH_JWKS_URL"):
        load_settings()


def test_tokens_are_minted_only_where_podrec_holds_the_key(settings: PodrecSettings) -> None:
    assert bearer(settings.with_(api={"auth": "off"}), "anyone") == {}
    assert bearer(settings, "backend")["Authorization"].startswith("Bearer ey")
    jwks = settings.with_(api={"auth": "jwks", "auth_jwks_url": "https://id.example/jwks.json"})
    with pytest.raises(ValueError, match="identity provider"):
        mint_token(jwks, "u1", "listener", 60)
    with pytest.raises(ValueError, match="id rule"):
        mint_token(settings, "not an id", "listener", 60)


class IdentityProvider:
    """A JWKS on loopback: one RSA key (kid k1), as an identity provider publishes its keys."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, kid: str = "k1", **overrides: object) -> str:
        return jwt.encode({**claims(), **overrides}, self.key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def provider() -> Iterator[IdentityProvider]:
    idp = IdentityProvider()
    yield idp
    idp.server.shutdown()


def test_rs256_tokens_verify_against_the_providers_jwks(provider: IdentityProvider, settings) -> None:
    own = settings.with_(api={"auth": "jwks", "auth_jwks_url": provider.url})
    verifier = Verifier.from_settings(own)
    assert verifier is not None and verifier.needs_network
    assert verifier.verify(provider.token(sub="u7")).subject == "u7"
    with pytest.raises(Unauthenticated, match="no key of the identity provider"):
        verifier.verify(provider.token(kid="forged"))
    hs256 = signed(claims(), key=b"s" * 32, kid="k1")  # a symmetric token naming the provider's key id
    with pytest.raises(Unauthenticated):
        verifier.verify(hs256)
    provider.server.shutdown()
    provider.server.server_close()
    offline = Verifier.from_settings(own)  # a new worker, whose first request finds the provider away
    assert offline is not None
    with pytest.raises(KeysUnavailable):
        offline.verify(provider.token())


def test_podrec_token_prints_a_token_the_api_of_the_same_data_folder_accepts(settings, monkeypatch) -> None:
    from click.testing import CliRunner

    from podrec_app.cli import main

    monkeypatch.setenv("PODREC_DATA_DIR", settings.data.dir)
    listener = CliRunner().invoke(main, ["token", "u1", "--expires-in", "60"])
    service = CliRunner().invoke(main, ["token", "my-backend", "--service"])
    verifier = Verifier.from_settings(settings)
    assert verifier is not None
    principal = verifier.verify(listener.output.strip())
    assert (principal.subject, principal.scope) == ("u1", "listener")
    assert principal.expires_at <= time.time() + 60  # --expires-in
    assert verifier.verify(service.output.strip()).scope == "service"
    refused = CliRunner().invoke(main, ["token", "not an id"])
    assert refused.exit_code == 1 and "id rule" in refused.output
