"""The benchmark harness (not part of the test suite): ``bench/run``, see docs/performance.md."""
