"""The process's one TLS context for the servers it calls (FHIR servers, key sets): httpx loads the
CA bundle again for every client it builds, about 15 ms each, and the app builds two per start-up
(many in tests). The context is httpx's own default, so SSL_CERT_FILE and SSL_CERT_DIR still apply."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()
