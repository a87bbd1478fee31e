"""Benchmarks that print figures and write JSON (`make bench`)."""
