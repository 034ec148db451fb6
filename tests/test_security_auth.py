"""JWT authentication of the EHR (CDS Hooks 2.0.1 security): real ES384/RS384 tokens, the issuer's
JWKS served through respx, one test per refused check."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
import pytest
import respx

from cds_service.api.app import create_app
from tests.security_helpers import (
    BASE_URL,
    ISSUER,
    JWKS_URL,
    SELECT,
    SIGN,
    SigningKey,
    bearer,
    claims,
    hook_request,
    jwks,
    key,
    make_settings,
    unsigned_token,
)
from tests.support.client import app_client, asgi_client

DISCOVERY = "/cds-services"


@pytest.fixture
def issuer_jwks() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        router.get(JWKS_URL).mock(
            return_value=httpx.Response(200, json=jwks(key("ES384"), key("RS384")))
        )
        yield router


async def call(
    tmp_path: Path, headers: dict[str, str], path: str = DISCOVERY, **settings: Any
) -> httpx.Response:
    async with app_client(make_settings(tmp_path, **settings)) as client:
        if path == DISCOVERY:
            return await client.get(path, headers=headers)
        hook = "order-sign" if path == SIGN else "order-select"
        return await client.post(path, json=hook_request(hook), headers=headers)


def assert_refused(response: httpx.Response, check: str, secret: str | None = None) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == check
    assert set(body) == {"error", "message", "details"}
    assert response.headers["www-authenticate"].startswith("Bearer")
    if secret:
        assert secret not in response.text


# --- accepted ---------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("alg", ["ES384", "RS384"])
@pytest.mark.parametrize("path", [DISCOVERY, SELECT, SIGN])
async def test_valid_token_is_accepted(
    tmp_path: Path, issuer_jwks: respx.MockRouter, alg: str, path: str
) -> None:
    response = await call(tmp_path, bearer(path, alg), path)
    assert response.status_code == 200, response.text


@pytest.mark.anyio
async def test_feedback_needs_and_accepts_a_token(
    tmp_path: Path, issuer_jwks: respx.MockRouter
) -> None:
    path = f"{SELECT}/feedback"
    item = {"card": "c-1", "outcome": "accepted", "outcomeTimestamp": "2026-11-24T15:00:00Z"}
    async with app_client(make_settings(tmp_path)) as client:
        refused = await client.post(path, json={"feedback": [item]})
        accepted = await client.post(path, json={"feedback": [item]}, headers=bearer(path))
    assert_refused(refused, "missing-authorization")
    assert accepted.status_code == 200


@pytest.mark.anyio
async def test_aud_as_a_list_containing_the_url_is_accepted(
    tmp_path: Path, issuer_jwks: respx.MockRouter
) -> None:
    headers = bearer(DISCOVERY, aud=["https://other.example.org", BASE_URL + DISCOVERY])
    assert (await call(tmp_path, headers)).status_code == 200


@pytest.mark.anyio
async def test_es256_only_when_configured(tmp_path: Path) -> None:
    es256 = SigningKey("ES256")
    with respx.mock() as router:
        router.get(JWKS_URL).mock(return_value=httpx.Response(200, json=jwks(es256)))
        default = await call(tmp_path, {"Authorization": f"Bearer {es256.sign(claims(DISCOVERY))}"})
        configured = await call(
            tmp_path,
            {"Authorization": f"Bearer {es256.sign(claims(DISCOVERY))}"},
            auth_algorithms=["ES384", "RS384", "ES256"],
        )
    assert_refused(default, "unsupported-algorithm")
    assert configured.status_code == 200


@pytest.mark.anyio
async def test_health_check_needs_no_token(tmp_path: Path) -> None:
    async with app_client(make_settings(tmp_path)) as client:
        assert (await client.get("/healthz")).status_code == 200


# --- refused, one per check -------------------------------------------------------------------


@pytest.mark.anyio
async def test_missing_header(tmp_path: Path, issuer_jwks: respx.MockRouter) -> None:
    response = await call(tmp_path, {})
    assert_refused(response, "missing-authorization")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("authorization", "check"),
    [
        ("Bearer", "malformed-authorization"),
        ("Basic dXNlcjpwYXNz", "malformed-authorization"),
        ("Bearer not-a-jwt", "malformed-token"),
        ("Bearer a.b.c", "malformed-token"),
        ("Bearer " + "x" * 20_000 + ".y.z", "malformed-token"),
    ],
)
async def test_malformed(
    tmp_path: Path, issuer_jwks: respx.MockRouter, authorization: str, check: str
) -> None:
    assert_refused(await call(tmp_path, {"Authorization": authorization}), check)


@pytest.mark.anyio
async def test_alg_none(tmp_path: Path, issuer_jwks: respx.MockRouter) -> None:
    forged = unsigned_token(DISCOVERY)
    response = await call(tmp_path, {"Authorization": f"Bearer {forged}"})
    assert_refused(response, "unsupported-algorithm", forged)
    assert "alg none" in response.json()["message"]


@pytest.mark.anyio
async def test_hs256_with_the_public_key_as_secret(
    tmp_path: Path, issuer_jwks: respx.MockRouter
) -> None:
    """Algorithm confusion: an HMAC token keyed with the issuer's *public* key."""
    secret = key("RS384").jwk["n"].encode()
    forged = jwt.encode(
        claims(DISCOVERY), secret, algorithm="HS256", headers={"kid": key("RS384").kid}
    )
    response = await call(tmp_path, {"Authorization": f"Bearer {forged}"})
    assert_refused(response, "unsupported-algorithm", forged)
    assert "HMAC" in response.json()["message"]


@pytest.mark.anyio
async def test_missing_kid(tmp_path: Path, issuer_jwks: respx.MockRouter) -> None:
    unnamed = jwt.encode(claims(DISCOVERY), key("ES384").private, algorithm="ES384")
    assert_refused(await call(tmp_path, {"Authorization": f"Bearer {unnamed}"}), "missing-kid")


@pytest.mark.anyio
async def test_unknown_kid(tmp_path: Path, issuer_jwks: respx.MockRouter) -> None:
    stranger = SigningKey("ES384", kid="not-in-the-jwks")
    forged = stranger.sign(claims(DISCOVERY))
    assert_refused(await call(tmp_path, {"Authorization": f"Bearer {forged}"}), "unknown-kid")


@pytest.mark.anyio
async def test_known_kid_signed_by_another_key(
    tmp_path: Path, issuer_jwks: respx.MockRouter
) -> None:
    impostor = SigningKey("ES384", kid=key("ES384").kid)
    forged = impostor.sign(claims(DISCOVERY))
    response = await call(tmp_path, {"Authorization": f"Bearer {forged}"})
    assert_refused(response, "invalid-signature", forged)


@pytest.mark.anyio
async def test_kid_of_a_key_for_another_algorithm(
    tmp_path: Path, issuer_jwks: respx.MockRouter
) -> None:
    rsa_signed = key("RS384").sign(claims(DISCOVERY), kid=key("ES384").kid)
    assert_refused(await call(tmp_path, {"Authorization": f"Bearer {rsa_signed}"}), "key-mismatch")


@pytest.mark.anyio
async def test_malformed_key_in_the_jwks(tmp_path: Path) -> None:
    broken = {**key("ES384").jwk, "x": SigningKey("ES384").jwk["x"]}  # not on the curve
    with respx.mock() as router:
        router.get(JWKS_URL).mock(return_value=httpx.Response(200, json={"keys": [broken]}))
        assert_refused(await call(tmp_path, bearer(DISCOVERY)), "key-mismatch")


@pytest.mark.anyio
async def test_unexpected_error_fails_closed(tmp_path: Path, issuer_jwks: respx.MockRouter) -> None:
    async def broken(*_: Any) -> bool:
        raise RuntimeError("replay store down")

    app = create_app(make_settings(tmp_path))
    app.state.authenticator.replay.first_use = broken
    async with asgi_client(app) as client:
        response = await client.get(DISCOVERY, headers=bearer(DISCOVERY))
    assert_refused(response, "invalid-token")


@pytest.mark.anyio
async def test_untrusted_issuer(tmp_path: Path, issuer_jwks: respx.MockRouter) -> None:
    headers = bearer(DISCOVERY, iss="https://evil.example.com")
    assert_refused(await call(tmp_path, headers), "untrusted-issuer")
    assert not any(
        "evil" in str(c.request.url) for c in issuer_jwks.calls
    )  # no fetch for an untrusted iss


@pytest.mark.anyio
@pytest.mark.parametrize(
    "aud",
    [
        "https://cds.example.org/cds-services",  # another host
        BASE_URL + SELECT,  # another endpoint of this service
        [BASE_URL + SIGN, "https://other.example.org"],
    ],
)
async def test_wrong_audience(tmp_path: Path, issuer_jwks: respx.MockRouter, aud: Any) -> None:
    response = await call(tmp_path, bearer(DISCOVERY, aud=aud))
    assert_refused(response, "wrong-audience")
    assert BASE_URL + DISCOVERY in response.json()["message"]


@pytest.mark.anyio
async def test_expired(tmp_path: Path, issuer_jwks: respx.MockRouter) -> None:
    now = int(time.time())
    headers = bearer(DISCOVERY, iat=now - 600, exp=now - 120)
    assert_refused(await call(tmp_path, headers), "token-expired")


@pytest.mark.anyio
async def test_expired_within_clock_skew_is_accepted(
    tmp_path: Path, issuer_jwks: respx.MockRouter
) -> None:
    now = int(time.time())
    response = await call(tmp_path, bearer(DISCOVERY, iat=now - 300, exp=now - 10))
    assert response.status_code == 200


@pytest.mark.anyio
async def test_iat_in_the_future(tmp_path: Path, issuer_jwks: respx.MockRouter) -> None:
    now = int(time.time())
    headers = bearer(DISCOVERY, iat=now + 600, exp=now + 900)
    assert_refused(await call(tmp_path, headers), "iat-in-future")


@pytest.mark.anyio
@pytest.mark.parametrize("claim", ["jti", "exp", "iat", "aud"])
async def test_missing_claim(tmp_path: Path, issuer_jwks: respx.MockRouter, claim: str) -> None:
    headers = bearer(DISCOVERY, **{claim: None})
    assert_refused(await call(tmp_path, headers), f"missing-{claim}")


@pytest.mark.anyio
@pytest.mark.parametrize("claim", ["exp", "iat"])
async def test_numeric_string_times_are_refused(
    tmp_path: Path, issuer_jwks: respx.MockRouter, claim: str
) -> None:
    now = int(time.time())
    value = str(now + 300 if claim == "exp" else now)
    assert_refused(await call(tmp_path, bearer(DISCOVERY, **{claim: value})), f"invalid-{claim}")


@pytest.mark.anyio
async def test_no_sub_claim_is_needed(tmp_path: Path, issuer_jwks: respx.MockRouter) -> None:
    assert "sub" not in claims(DISCOVERY)
    assert (await call(tmp_path, bearer(DISCOVERY))).status_code == 200


@pytest.mark.anyio
async def test_replayed_jti(tmp_path: Path, issuer_jwks: respx.MockRouter) -> None:
    headers = bearer(DISCOVERY)
    async with app_client(make_settings(tmp_path)) as client:
        first = await client.get(DISCOVERY, headers=headers)
        replayed = await client.get(DISCOVERY, headers=headers)
        same_jti_new_token = await client.get(
            DISCOVERY,
            headers=bearer(
                DISCOVERY,
                jti=jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})[
                    "jti"
                ],
            ),
        )
    assert first.status_code == 200
    assert_refused(replayed, "token-replayed")
    assert_refused(same_jti_new_token, "token-replayed")


@pytest.mark.anyio
async def test_token_lifetime_over_the_maximum(
    tmp_path: Path, issuer_jwks: respx.MockRouter
) -> None:
    now = int(time.time())
    headers = bearer(DISCOVERY, iat=now, exp=now + 7200)
    assert_refused(await call(tmp_path, headers), "token-lifetime-too-long")


@pytest.mark.anyio
async def test_jku_not_allow_listed(tmp_path: Path, issuer_jwks: respx.MockRouter) -> None:
    attacker_jwks = "https://evil.example.com/jwks.json"
    route = issuer_jwks.get(attacker_jwks).mock(return_value=httpx.Response(200, json={"keys": []}))
    forged = key("ES384").sign(claims(DISCOVERY), jku=attacker_jwks)
    assert_refused(await call(tmp_path, {"Authorization": f"Bearer {forged}"}), "jku-not-allowed")
    assert not route.called


@pytest.mark.anyio
async def test_jku_allow_listed_for_another_issuer_only(
    tmp_path: Path, issuer_jwks: respx.MockRouter
) -> None:
    other = "https://keys.example.net/jwks.json"
    signed = key("ES384").sign(claims(DISCOVERY), jku=other)
    response = await call(
        tmp_path,
        {"Authorization": f"Bearer {signed}"},
        trusted_issuers={ISSUER: JWKS_URL, "https://other-ehr.example.net": other},
        allowed_jku={"https://other-ehr.example.net": [other]},
    )
    assert_refused(response, "jku-not-allowed")


@pytest.mark.anyio
async def test_jku_allow_listed_is_used(tmp_path: Path) -> None:
    rotated = SigningKey("ES384", kid="rotated-2026")
    jku = "https://keys.ehr.example.org/cds/jwks.json"
    with respx.mock(assert_all_called=False) as router:
        default_set = router.get(JWKS_URL).mock(return_value=httpx.Response(200, json=jwks()))
        jku_set = router.get(jku).mock(return_value=httpx.Response(200, json=jwks(rotated)))
        signed = rotated.sign(claims(DISCOVERY), jku=jku)
        response = await call(
            tmp_path, {"Authorization": f"Bearer {signed}"}, allowed_jku={ISSUER: [jku]}
        )
    assert response.status_code == 200, response.text
    assert jku_set.call_count == 1
    assert not default_set.called


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(200, text="<html>maintenance</html>"),
        httpx.Response(200, json={"no": "keys"}),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
    ids=["http-500", "html", "not-a-jwks", "connect-error", "timeout"],
)
async def test_jwks_fetch_failure(tmp_path: Path, failure: Any) -> None:
    with respx.mock() as router:
        route = router.get(JWKS_URL)
        if isinstance(failure, httpx.Response):
            route.mock(return_value=failure)
        else:
            route.mock(side_effect=failure)
        response = await call(tmp_path, bearer(DISCOVERY))
    assert_refused(response, "jwks-unavailable")


@pytest.mark.anyio
async def test_no_trusted_issuer_configured_refuses_everyone(tmp_path: Path) -> None:
    response = await call(tmp_path, bearer(DISCOVERY), trusted_issuers={})
    assert_refused(response, "untrusted-issuer")


@pytest.mark.anyio
async def test_401_is_answered_before_the_body_is_read(
    tmp_path: Path, issuer_jwks: respx.MockRouter
) -> None:
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(SELECT, content=b"{not json", headers=bearer(SIGN))
    assert_refused(response, "wrong-audience")


# --- JWKS cache -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_jwks_is_cached_across_requests(
    tmp_path: Path, issuer_jwks: respx.MockRouter
) -> None:
    async with app_client(make_settings(tmp_path)) as client:
        for _ in range(5):
            response = await client.get(DISCOVERY, headers=bearer(DISCOVERY))
            assert response.status_code == 200
    assert issuer_jwks.routes[0].call_count == 1


@pytest.mark.anyio
async def test_unknown_kid_refreshes_the_jwks_once_per_interval(tmp_path: Path) -> None:
    rotated = SigningKey("RS384", kid="rotated")
    with respx.mock() as router:
        route = router.get(JWKS_URL)
        route.side_effect = [
            httpx.Response(200, json=jwks(key("ES384"))),
            httpx.Response(200, json=jwks(key("ES384"), rotated)),
        ]
        settings = make_settings(tmp_path, jwks_refresh_interval_s=0.2)
        async with app_client(settings) as client:
            old = await client.get(DISCOVERY, headers=bearer(DISCOVERY))
            await anyio.sleep(0.25)
            # The issuer rotates in a new key: the first unknown kid triggers one refresh ...
            new = await client.get(
                DISCOVERY, headers={"Authorization": f"Bearer {rotated.sign(claims(DISCOVERY))}"}
            )
            # ... but made-up kids after it do not: at most one refresh per interval.
            for n in range(5):
                forged = SigningKey("ES384", kid=f"made-up-{n}").sign(claims(DISCOVERY))
                response = await client.get(
                    DISCOVERY, headers={"Authorization": f"Bearer {forged}"}
                )
                assert_refused(response, "unknown-kid")
    assert old.status_code == 200
    assert new.status_code == 200, new.text
    assert route.call_count == 2
