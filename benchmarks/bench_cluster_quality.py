"""Clustering quality on real text (the clustering part of benchmarks/quality on its own).

    python -m benchmarks.bench_cluster_quality [--bbc 200] [--seeds 3]     # ~1 min on 2 cores

Untargeted clustering of BBC openings by topic (saetools variants vs MiniLM k-means) and
targeted clustering of the apologetic / enthusiastic tone fixture; see
benchmarks/quality/clustering.py for the definitions.
"""

from __future__ import annotations

import argparse

from benchmarks.quality.clustering import markdown, run_clustering


def main() -> None:
    """Print the two tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bbc", type=int, default=200, help="articles per topic")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print("\n".join(markdown(run_clustering(args.bbc, args.seeds))))


if __name__ == "__main__":
    main()
