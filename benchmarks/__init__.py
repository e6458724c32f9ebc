"""Speed and quality benchmarks; each module prints its figures (not part of the test suite)."""
