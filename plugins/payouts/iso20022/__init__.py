"""ISO 20022 payment messages: the pain.001 credit transfer initiation writer and its XSD check.

Import from here: `write_pain001`, `validate`, `Debtor`, `CreditTransfer`, `Pain001Error`.
"""

from __future__ import annotations

from payouts.iso20022.pain001 import (
    CreditTransfer,
    Debtor,
    Pain001Error,
    VERSIONS,
    payment_problems,
    validate,
    write_pain001,
)

__all__ = ["CreditTransfer", "Debtor", "Pain001Error", "VERSIONS", "payment_problems", "validate", "write_pain001"]
