"""Reconciliation: statement lines matched against payout items, by rules kept as data."""
