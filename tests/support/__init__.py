"""What every test tier shares: one clock (`NOW`), one ASGI client (client.py), the builders of FHIR
resources and CDS Hooks requests (builders.py), the SPEC rating matrix (spec_matrix.py);
tier-specific helpers (security, operations, browser) build on these."""
