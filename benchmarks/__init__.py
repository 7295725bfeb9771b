"""pytest-benchmark suites behind ``nox -s bench`` (see docs/benchmarks.md)."""
