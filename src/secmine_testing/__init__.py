"""Test doubles for secmine's tests and benchmarks (not part of the product package)."""
