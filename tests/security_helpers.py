"""Helpers shared by the security, fuzz, FHIR-fault and privacy tests: signing keys and tokens, an app
client that runs the lifespan, and a realistic hook request that produces a card."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import jwt
import respx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service.api.app import create_app
from cds_service.config import Settings
from cds_service.wire import CdsResponse
from tests.support.builders import empty_values
from tests.support.client import asgi_client
from tests.support.clock import NOW
from tests.support.database import migrated_sqlite
from tests.support.settings import read_settings

BASE_URL = "http://testserver"
ISSUER = "https://ehr.example.org"
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"
# Loopback port 9 (discard) refuses connections: a fetch no test mocks fails at once, locally.
FHIR_BASE = "http://127.0.0.1:9/fhir"
SELECT = "/cds-services/pdph-imaging-order-select"
SIGN = "/cds-services/pdph-imaging-order-sign"

PATIENT_ID = "pat-ZQ7781"
PATIENT_FAMILY = "Quixotewright"
PATIENT_GIVEN = "Zebulonia"


class SigningKey:
    """An EHR's key pair: `jwk` is the public half as published in its JWKS."""

    def __init__(self, alg: str, kid: str | None = None) -> None:
        self.alg = alg
        self.kid = kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}"
        if alg.startswith("ES"):
            curve = ec.SECP384R1() if alg == "ES384" else ec.SECP256R1()
            self.private: Any = ec.generate_private_key(curve)
            public = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk: dict[str, Any] = {**public, "kid": self.kid, "use": "sig", "alg": alg}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, "typ": "JWT", **header}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=headers)


_KEYS: dict[str, SigningKey] = {}


def key(alg: str) -> SigningKey:
    """One key per algorithm for the whole run (RSA generation is slow)."""
    if alg not in _KEYS:
        _KEYS[alg] = SigningKey(alg)
    return _KEYS[alg]


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [k.jwk for k in keys]}


def claims(path: str, **overrides: Any) -> dict[str, Any]:
    """Claims an EHR sends when calling `path` (CDS Hooks 2.0.1): no `sub`."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": BASE_URL + path,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def token(path: str, alg: str = "ES384", **overrides: Any) -> str:
    return key(alg).sign(claims(path, **overrides))


def bearer(path: str, alg: str = "ES384", **overrides: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(path, alg, **overrides)}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(path: str, **header: Any) -> str:
    """An `alg: none` token (the classic downgrade attack)."""
    head = {"alg": "none", "typ": "JWT", "kid": key("ES384").kid, **header}
    return f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(claims(path)).encode())}."


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "migrate_on_startup": False,
        "auth_required": True,
        "trusted_issuers": {ISSUER: JWKS_URL},
        "fhir_servers": {ISSUER: [FHIR_BASE]},
        "public_base_url": BASE_URL,
        "fhir_timeout_s": 1.0,
    }
    values.update(overrides)
    database_url = values.pop("database_url", None) or migrated_sqlite(tmp_path / "cds.sqlite3")
    return read_settings(database_url, **values)


def open_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Auth off: for tests of the hook path itself."""
    return make_settings(tmp_path, auth_required=False, **overrides)


def iso(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "name": [{"family": PATIENT_FAMILY, "given": [PATIENT_GIVEN]}],
        "gender": "female",
        "birthDate": "1990-03-04",
        "identifier": [{"system": "urn:mrn", "value": "MRN-55501234"}],
    }


def mri_brain_order(order_id: str = "sr-1") -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {
            "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "70553"}],
            "text": "MRI brain without and with contrast",
        },
    }


def lumbar_puncture(hours_ago: float = 30) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": "lp-1",
        "status": "completed",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {
            "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62270"}],
            "text": "Lumbar puncture",
        },
        "performedDateTime": iso(hours_ago),
    }


def pdph_condition() -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": "cond-1",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G97.1"}],
            "text": "Post-dural puncture headache",
        },
        "onsetDateTime": iso(20),
    }


def hook_request(
    hook: str = "order-select",
    prefetch: dict[str, Any] | None = None,
    orders: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An order-select (or order-sign) request for an MRI brain 30 h after a lumbar puncture with a
    post-dural-puncture headache: the `pdph-acute` scenario, which answers one warning card."""
    orders = orders if orders is not None else [mri_brain_order()]
    context: dict[str, Any] = {
        "userId": "Practitioner/example",
        "patientId": PATIENT_ID,
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]},
    }
    if hook == "order-select":
        context["selections"] = [f"ServiceRequest/{o.get('id')}" for o in orders]
    request: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": FHIR_BASE,
        "context": context,
        "prefetch": prefetch
        if prefetch is not None
        else {
            "patient": patient(),
            "procedures": bundle(lumbar_puncture()),
            "conditions": bundle(pdph_condition()),
            "observations": bundle(),
            "imagingReports": bundle(),
            "imagingStudies": bundle(),
        },
    }
    request.update(extra)
    return request


# --- fuzzing ------------------------------------------------------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))  # 0: each test's in-suite default
FUZZ_REPORT = os.environ.get("FUZZ_REPORT")  # a JSON-lines file the long fuzz run adds counts to


def fuzz_examples(in_suite: int) -> int:
    return FUZZ_EXAMPLES or in_suite


def healthy_fhir_answer(request: httpx.Request) -> httpx.Response:
    """A stand-in FHIR server for fuzzing (respx): reads answer a Patient, searches an empty Bundle.
    Whatever URL a fuzzed request names, nothing leaves the process."""
    if "/Patient/" in request.url.path:
        return httpx.Response(200, json=patient())
    return httpx.Response(200, json=bundle())


def assert_cds_hooks_json(value: Any) -> None:
    """CDS Hooks 2.0 JSON rules: no null and no empty strings, lists or objects (except the required
    top-level `cards`, empty when there is nothing to say)."""
    assert [p for p in empty_values(value) if p != "response.cards"] == []


class FuzzClient:
    """Drives the ASGI app from synchronous Hypothesis tests through an anyio portal (one event loop
    in a thread, the app's lifespan entered once), and checks every answer: never a 5xx, and a 200
    from a hook endpoint is a valid CDS Hooks response."""

    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient, name: str) -> None:
        self.portal = portal
        self.client = client
        self.name = name
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.answers_with_cards = 0

    @classmethod
    @contextmanager
    def running(cls, settings: Settings, name: str) -> Iterator[FuzzClient]:
        app = create_app(settings, clock=lambda: NOW)
        with (
            respx.mock(assert_all_called=False) as router,
            start_blocking_portal() as portal,
            portal.wrap_async_context_manager(asgi_client(app, BASE_URL)) as client,
        ):
            router.get(JWKS_URL).mock(
                return_value=httpx.Response(200, json=jwks(key("ES384"), key("RS384")))
            )
            router.route().mock(side_effect=healthy_fhir_answer)
            fuzz = cls(portal, client, name)
            yield fuzz
            fuzz.report()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if "json" in kwargs:  # sent with NaN and Infinity too, which Python's json module reads
            kwargs["content"] = json.dumps(kwargs.pop("json"), allow_nan=True).encode()
            kwargs["headers"] = {"Content-Type": "application/json", **kwargs.get("headers", {})}
        response = self.portal.call(partial(self.client.request, method, path, **kwargs))
        self.statuses[response.status_code] += 1
        self.check(path, response)
        if response.status_code >= 400:
            self.errors[response.json()["error"]] += 1
        elif path.startswith("/cds-services/") and response.json().get("cards"):
            self.answers_with_cards += 1
        return response

    @staticmethod
    def check(path: str, response: httpx.Response) -> None:
        assert response.status_code < 500, response.text[:500]
        if response.status_code < 400 and "json" not in response.headers.get("content-type", ""):
            assert not path.startswith("/cds-services"), path  # /metrics text, /demo HTML
            return
        body = response.json()
        if response.status_code == 200 and path.startswith("/cds-services/"):
            if path.endswith("/feedback"):
                assert {"received", "stored"} <= set(body) <= {"received", "stored", "flagged"}
            else:
                parsed = CdsResponse.model_validate(body)
                assert_cds_hooks_json(body)
                for card in parsed.cards:
                    assert len(card.summary) < 140
                    assert card.selectionBehavior or not card.suggestions
        elif response.status_code >= 400:
            assert {"error", "message"} <= set(body), body

    def report(self) -> None:
        total = sum(self.statuses.values())
        summary = {
            "fuzz": self.name,
            "requests": total,
            "statuses": dict(sorted(self.statuses.items())),
            "answers_with_cards": self.answers_with_cards,
            "errors": dict(self.errors.most_common()),
        }
        print(f"\n[fuzz] {json.dumps(summary)}")
        if FUZZ_REPORT:
            with open(FUZZ_REPORT, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(summary) + "\n")
