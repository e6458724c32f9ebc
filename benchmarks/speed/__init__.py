"""Speed and memory benchmarks: each module measures one part against a baseline run in the same
process and prints the figures (``python -m benchmarks.speed``)."""
