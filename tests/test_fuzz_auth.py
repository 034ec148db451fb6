"""Property-based fuzzing of authentication: arbitrary Authorization headers, and really signed
tokens whose header and claims are fuzzed. Never a 5xx, never an echoed token, and a token is
accepted only when every check of CDS Hooks 2.0.1 holds (an oracle written independently of the
middleware)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm

from cds_service.security import auth
from tests.security_helpers import (
    BASE_URL,
    ISSUER,
    FuzzClient,
    b64url,
    claims,
    fuzz_examples,
    key,
    make_settings,
)

pytestmark = pytest.mark.fuzz

PATH = "/cds-services"
# Every fixed text a refusal can contain: the security package's messages and the JSON keys around them.
AUTH_SOURCE = (
    "\n".join(path.read_text(encoding="utf-8") for path in Path(auth.__file__).parent.glob("*.py"))
    + '{"error":"message":"details"}'
)
AUDIENCE = BASE_URL + PATH
SKEW = 60
MAX_LIFETIME = 3600
FUZZ = settings(
    max_examples=fuzz_examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzClient]:
    settings_ = make_settings(tmp_path_factory.mktemp("fuzz-auth"))
    with FuzzClient.running(settings_, "hypothesis-auth") as client:
        yield client


header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)


@FUZZ
@given(authorization=header_values | header_values.map(lambda t: f"Bearer {t}"))
def test_arbitrary_authorization_headers(fuzz: FuzzClient, authorization: str) -> None:
    response = fuzz.request("GET", PATH, headers={"Authorization": authorization})
    assert response.status_code == 401
    secret = authorization.removeprefix("Bearer ")
    # Hypothesis also draws strings from the code under test: those may match a fixed message.
    message = response.json()["message"]
    assert secret not in message or len(secret) < 4 or secret in AUTH_SOURCE


now = int(time.time())
junk = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.lists(st.integers(), max_size=2)
)
times = st.integers(now - 7200, now + 7200) | st.floats(now - 600, now + 600) | junk

header_changes = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS384", "ES256", "HS256", "none", "None"]) | junk,
        "kid": st.sampled_from([key("ES384").kid, key("RS384").kid, "other"]) | junk,
        "typ": st.just("JWT") | junk,
        "jku": st.sampled_from(["https://evil.example.com/jwks"]) | junk,
    },
)
claim_changes = st.fixed_dictionaries(
    {},
    optional={
        "iss": st.sampled_from([ISSUER, ISSUER + "/", "https://evil.example.com"]) | junk,
        "aud": st.sampled_from([AUDIENCE, AUDIENCE + "/", BASE_URL, [AUDIENCE, "x"], ["x"]]) | junk,
        "exp": times,
        "iat": times,
        "nbf": times,
        "jti": st.uuids().map(str) | st.sampled_from(["replayed", ""]) | junk,
        "sub": junk,
    },
)


# A valid header and claims with fuzzed changes (often none, so that acceptance is exercised too).
token_headers = st.builds(
    lambda changes: {"alg": "ES384", "kid": key("ES384").kid, "typ": "JWT", **changes},
    st.just({}) | header_changes,
)
token_claims = st.builds(
    lambda changes, dropped: {
        k: v for k, v in {**claims(PATH), **changes}.items() if k not in dropped
    },
    st.just({}) | claim_changes,
    st.just(set()) | st.sets(st.sampled_from(["iss", "aud", "exp", "iat", "jti"]), max_size=2),
)


def es384_token(header: dict[str, Any], claims: Any) -> str:
    """Signed with the trusted ES384 key whatever the header says, so that only the checks decide."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = ECAlgorithm(hashes.SHA384).sign(signing_input.encode(), key("ES384").private)
    return f"{signing_input}.{b64url(signature)}"


def should_accept(header: dict[str, Any], claims: Any, clock: float) -> bool:
    if not isinstance(claims, dict):
        return False
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", clock)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat, nbf))
    return (
        header.get("alg") == "ES384"
        and header.get("kid") == key("ES384").kid
        and "jku" not in header
        and claims.get("iss") == ISSUER
        and any(a in (AUDIENCE, AUDIENCE + "/") for a in audiences)
        and numbers
        and exp > clock - SKEW
        and iat <= clock + SKEW
        and nbf <= clock + SKEW
        and exp - iat <= MAX_LIFETIME
        and isinstance(claims.get("sub", ""), str)  # not required, but a string when present
        and isinstance(claims.get("jti"), str)
        and 0 < len(claims["jti"]) <= 512
    )


@FUZZ
@given(header=token_headers, payload=token_claims | junk)
def test_signed_tokens_with_fuzzed_header_and_claims(
    fuzz: FuzzClient, header: dict[str, Any], payload: Any
) -> None:
    token = es384_token(header, payload)
    clock = time.time()
    response = fuzz.request("GET", PATH, headers={"Authorization": f"Bearer {token}"})
    assert token not in response.text
    if response.status_code == 200:
        assert should_accept(header, payload, clock), json.dumps([header, payload, clock])
    else:
        assert response.status_code == 401
        replay = response.json()["error"] == "token-replayed"
        borderline = isinstance(payload, dict) and any(
            isinstance(payload.get(c), int | float) and abs(payload[c] - clock) < SKEW + 5
            for c in ("exp", "iat", "nbf")
        )
        assert replay or borderline or not should_accept(header, payload, clock), (
            header,
            payload,
            response.json(),
        )
