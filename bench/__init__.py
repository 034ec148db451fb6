"""Benchmark of the CDS service (not part of the test suite): `make bench`, see bench/README.md."""
