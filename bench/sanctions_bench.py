"""Measure sanctions screening: recall, false positives and bulk speed.

Builds the labelled evaluation from the lists (variants of listed names; common
non-listed names), prints recall and false positive rate, then times
`screen_frame` on 1,000,000 distinct payee names against the full index.

    .venv/bin/python bench/sanctions_bench.py [--names 1000000] [--variants 2000] [--common 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR / "plugins"))
os.environ.setdefault("PAYOUTS_DATA_DIR", str(PROJECT_DIR / ".data" / "bench"))

import polars as pl  # noqa: E402

from payouts.checks import names  # noqa: E402
from payouts.checks.sanctions import evaluate, labelled_variants, load_lists  # noqa: E402


def distinct_payee_names(count: int, seed: int = 3) -> list[str]:
    """`count` distinct names: every given+family pair, then given+middle+family triples."""
    rng = random.Random(seed)
    given = sorted(set(names.COMMON_GIVEN_NAMES))
    family = sorted(set(names.COMMON_FAMILY_NAMES))
    found = {f"{g.title()} {f.title()}" for g in given for f in family}
    while len(found) < count:
        found.add(f"{rng.choice(given).title()} {rng.choice(given).title()} {rng.choice(family).upper()}")
    result = sorted(found)
    rng.shuffle(result)
    return result[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--variants", type=int, default=2000)
    parser.add_argument("--common", type=int, default=10_000)
    args = parser.parse_args()

    started = time.perf_counter()
    index = load_lists(use_cache=False)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    index = load_lists()
    index = load_lists()
    cached_s = time.perf_counter() - started
    print(f"index: {len(index.entries)} entries, {index.names.height} names (primary + aliases), "
          f"{len(index.wallets)} wallet addresses; build {build_s:.2f}s, cached load {cached_s:.3f}s")

    report = evaluate(index, args.variants, args.common)
    print(f"recall: {report['recall']:.4f} on {report['variants']} variants of listed names "
          f"{json.dumps(report['recall_by_kind'])}")
    print(f"false positive rate: {report['false_positive_rate']:.4f} on {report['common_names']} "
          f"common non-listed names ({len(report['false_positives'])} flagged)")

    payee_names = distinct_payee_names(args.names)
    # A few listed-name variants among them, so the run does real matching work too.
    planted = [v for v, _, _ in labelled_variants(index, 1000, seed=99)]
    payee_names[: len(planted)] = planted
    payees = pl.DataFrame({
        "recipient_id": [f"rcp-{i}" for i in range(len(payee_names))],
        "name": payee_names,
        "country": ["DE"] * len(payee_names),
    })
    started = time.perf_counter()
    screened = index.screen_frame(payees)
    elapsed = time.perf_counter() - started
    counts = dict(screened.group_by("decision").len().iter_rows())
    print(f"screen_frame: {payees.height:,} distinct names in {elapsed:.1f}s "
          f"({payees.height / elapsed:,.0f} names/s); decisions {counts}")


if __name__ == "__main__":
    main()
