"""What `payouts run --provider NAME` gets back from its provider's start function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RunProvider:
    steps: list[str]                                   # the run's DAG steps, the provider's own added
    copy_out: Callable[[Path], dict] | None = None     # `--out DIR`: copies of the files it exchanged
