"""What every test tier shares: one clock (`NOW`), one ASGI client. Builders of FHIR resources and
CDS Hooks requests are in tests/builders.py; tier-specific helpers (security, operations, browser)
build on these."""
