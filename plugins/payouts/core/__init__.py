"""The core every part stands on: money, the item lifecycle, the ledger, the reason catalogue.

- money.py: currency and asset exponents; exact decimal <-> minor units
- states.py, items.py: the item state machine and its bulk moves
- ledger.py: the one writer of the ledger (double-entry transfers per item event)
- reasons.py: the one catalogue of reason codes (row checks, provider answers, provider ISO codes)
- destinations.py: the one writer of a payee's blocked destination
- rails.py, routing.py, calendars.py: one record per rail, the routing table, execution dates
- masking.py: destinations shown by their last four characters in logs and errors
"""
