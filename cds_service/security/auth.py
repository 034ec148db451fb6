"""Verification of the JWT an EHR sends with every call (CDS Hooks 2.0.1, "Trusting CDS Clients").

PyJWT does the cryptography and the standard claim checks; this module decides which key and which
algorithms are acceptable, and names the check that failed. Never log or echo the token itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt

from cds_service.errors import AuthFailure, JwksUnavailable
from cds_service.security.jwks import JwksCache
from cds_service.security.replay import ReplayCache
from cds_service.security.settings import SecuritySettings
from cds_service.tls import client_tls

MAX_TOKEN_CHARS = 16 * 1024
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]  # CDS Hooks requires no `sub`


class Authenticator:
    def __init__(
        self,
        settings: SecuritySettings,
        replay: ReplayCache,
    ) -> None:
        self.settings = settings
        self.replay = replay
        self.jwks: JwksCache | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """Opens the HTTP client the key sets are fetched with (for the app's lifespan)."""
        timeout = httpx.Timeout(self.settings.jwks_timeout_s)
        client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=client_tls())
        async with client:
            self.jwks = JwksCache(
                client,
                self.settings.jwks_cache_ttl_s,
                self.settings.jwks_refresh_interval_s,
                max_bytes=self.settings.jwks_max_bytes,
            )
            try:
                yield
            finally:
                self.jwks = None

    async def authenticate(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The verified claims of the bearer token, or AuthFailure. `audience` is the URL called."""
        token = _bearer_token(authorization)
        header, unverified = _unverified_parts(token)
        alg = self._algorithm(header)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthFailure("missing-kid", "The token header has no kid naming its signing key.")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise AuthFailure("missing-iss", "The token has no iss claim.")
        if issuer not in self.settings.trusted_issuers:
            raise AuthFailure("untrusted-issuer", "The token's issuer is not a trusted EHR.")
        key = await self._signing_key(header, issuer, kid, alg)
        claims = self._verify(token, key, alg, issuer, audience)
        await self._check_replay(claims, issuer)
        return claims

    def _algorithm(self, header: dict[str, Any]) -> str:
        alg = header.get("alg")
        allowed = self.settings.auth_algorithms
        if isinstance(alg, str) and alg in allowed:
            return alg
        if not isinstance(alg, str) or alg.lower() == "none":
            reason = "Unsigned tokens (alg none) are refused."
        elif alg.upper().startswith("HS"):
            reason = "Shared-secret (HMAC) algorithms are refused."
        else:
            reason = "The token's algorithm is not accepted."
        raise AuthFailure("unsupported-algorithm", f"{reason} Accepted: {', '.join(allowed)}.")

    async def _signing_key(
        self, header: dict[str, Any], issuer: str, kid: str, alg: str
    ) -> jwt.PyJWK:
        jku = header.get("jku")
        if "jku" not in header:
            jwks_url = self.settings.trusted_issuers[issuer]
        elif isinstance(jku, str) and jku in self.settings.allowed_jku.get(issuer, []):
            jwks_url = jku
        else:
            raise AuthFailure("jku-not-allowed", "The token's jku is not allowed for its issuer.")
        if self.jwks is None:
            raise AuthFailure("jwks-unavailable", "The service is not ready to verify tokens.")
        try:
            jwk = await self.jwks.key(jwks_url, kid)
        except JwksUnavailable:
            raise AuthFailure(
                "jwks-unavailable", "The issuer's key set could not be fetched."
            ) from None
        if jwk is None:
            raise AuthFailure("unknown-kid", "No key with the token's kid in the issuer's key set.")
        if jwk.get("alg", alg) != alg:
            raise AuthFailure("key-mismatch", "The key named by kid is for another algorithm.")
        try:
            return jwt.PyJWK(jwk, algorithm=alg)
        except (jwt.PyJWTError, ValueError, TypeError):  # also a malformed key in the set
            raise AuthFailure(
                "key-mismatch", "The key named by kid cannot verify this algorithm."
            ) from None

    def _verify(
        self, token: str, key: jwt.PyJWK, alg: str, issuer: str, audience: str
    ) -> dict[str, Any]:
        skew = self.settings.auth_clock_skew_s
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=[audience, audience + "/"],
                issuer=issuer,
                leeway=skew,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise AuthFailure(
                f"missing-{exc.claim}", f"The token has no {exc.claim} claim."
            ) from None
        except jwt.InvalidSignatureError:
            raise AuthFailure(
                "invalid-signature", "The token's signature does not verify."
            ) from None
        except jwt.ExpiredSignatureError:
            raise AuthFailure("token-expired", "The token has expired (exp).") from None
        except jwt.ImmatureSignatureError:
            raise AuthFailure("iat-in-future", "The token is not valid yet (iat or nbf).") from None
        except jwt.InvalidAudienceError:
            raise AuthFailure(
                "wrong-audience", f"The token's aud must be the URL called: {audience}"
            ) from None
        except jwt.InvalidIssuerError:
            raise AuthFailure("untrusted-issuer", "The token's issuer is not trusted.") from None
        except (jwt.InvalidKeyError, jwt.InvalidAlgorithmError):
            raise AuthFailure("key-mismatch", "The key cannot verify this token.") from None
        except jwt.PyJWTError as exc:
            raise AuthFailure(
                "invalid-token", f"The token is invalid ({type(exc).__name__})."
            ) from None
        for claim in ("exp", "iat", "nbf"):  # PyJWT also takes strings and booleans: RFC 7519 not
            value = claims.get(claim, 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise AuthFailure(f"invalid-{claim}", f"The {claim} claim must be a number.")
        if claims["exp"] - claims["iat"] > self.settings.auth_max_token_lifetime_s:
            raise AuthFailure(
                "token-lifetime-too-long",
                f"exp - iat exceeds {self.settings.auth_max_token_lifetime_s} s.",
            )
        return claims

    async def _check_replay(self, claims: dict[str, Any], issuer: str) -> None:
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > 512:
            raise AuthFailure("invalid-jti", "The token's jti must be a string of 1 to 512 chars.")
        expires_at = float(claims["exp"]) + self.settings.auth_clock_skew_s
        if not await self.replay.first_use(issuer, jti, expires_at):
            raise AuthFailure("token-replayed", "This token (jti) has already been used.")


def _bearer_token(authorization: str | None) -> str:
    if authorization is None:
        raise AuthFailure(
            "missing-authorization", "An Authorization: Bearer <JWT> header is required."
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthFailure(
            "malformed-authorization", "The Authorization header must be Bearer <JWT>."
        )
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise AuthFailure("malformed-token", "The bearer token is not a compact JWS.")
    return token


def _unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before verification: only to choose the issuer's key set and key."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        raise AuthFailure("malformed-token", "The bearer token is not a well-formed JWT.") from None
    if not isinstance(claims, dict):
        raise AuthFailure("malformed-token", "The token's claims are not a JSON object.")
    return header, claims
