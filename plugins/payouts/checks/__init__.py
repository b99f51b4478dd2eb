"""Checks on a payout run: the batch data-quality gate and the per-item row checks."""
