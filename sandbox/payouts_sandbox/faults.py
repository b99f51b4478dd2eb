"""Fault injection for the sandbox, deterministic given a seed.

Grammar: `name=probability[,name=probability...]`, e.g. `reject=0.02,transient=0.1`.
Every decision is a hash of (seed, fault, subject), so a retried request sees
the same per-payment decisions; request-level faults also hash the attempt number
so that a retry of the same body eventually gets through.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# name -> what it does (shown in errors and --help)
FAULTS: dict[str, str] = {
    "reject": "account-level rejection of a payment (AC04 or AC01)",
    "return": "an accepted payment is returned 1-3 business days later (AC04 or MS03)",
    "transient": "the whole request answers 503 before doing anything",
    "lost_response": "the request is executed, then answers 504 (the caller must not resend under new keys)",
    "ambiguous": "the same as lost_response: executed, but the answer never arrives",
    "funding": "our prefunded account lacks funds: rejected with AM04 (the rail pauses)",
    "regulatory": "held by the provider's compliance: rejected with RR04",
    "instant_unreachable": "sepa_instant only: creditor agent offline, rejected with AB08",
    "vop_close": "Verification of Payee: the bank holds a slightly different name (RVMC)",
    "vop_nomatch": "Verification of Payee: the bank holds another name (RVNM)",
    "vop_unavailable": "Verification of Payee: the payee's bank cannot check the name (RVNA)",
    # The bank mode (payouts_sandbox.bank), per file:
    "file_reject": "bank: the whole file is rejected (group RJCT, MS03)",
    "partial_reject": "bank: some payments of a file are rejected (PART, the others ACSC)",
    "pain002_late": "bank: the status reports of a file come late (--late-s)",
    "pain002_missing": "bank: the status reports of a file never come",
    "upload_drop": "bank: the connection drops in the middle of an upload",
}


class FaultSpecError(ValueError):
    """A --faults string that does not follow the grammar."""


def parse_faults(spec: str | None) -> dict[str, float]:
    """'reject=0.1,transient=0.05' -> {'reject': 0.1, 'transient': 0.05}."""
    if spec is None or not spec.strip():
        return {}
    result: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            raise FaultSpecError(f"empty fault in {spec!r}")
        name, sep, raw = part.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not raw:
            raise FaultSpecError(f"fault {part!r} must be name=probability")
        if name not in FAULTS:
            raise FaultSpecError(
                f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}"
            )
        if name in result:
            raise FaultSpecError(f"fault {name!r} given twice")
        try:
            probability = float(raw)
        except ValueError:
            raise FaultSpecError(f"probability of {name!r} must be a number, got {raw!r}") from None
        if not 0.0 <= probability <= 1.0:
            raise FaultSpecError(f"probability of {name!r} must be within [0, 1], got {raw}")
        result[name] = probability
    return result


def unit_hash(seed: int, *parts: object) -> float:
    """A uniform number in [0, 1) from the seed and the parts."""
    text = ":".join([str(seed), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") / 2**64


@dataclass(frozen=True)
class Faults:
    seed: int = 0
    probabilities: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: str | dict[str, float] | Faults | None, seed: int = 0) -> Faults:
        if isinstance(spec, Faults):
            return spec
        if isinstance(spec, dict):
            return cls(seed, parse_faults(",".join(f"{k}={v}" for k, v in spec.items())))
        return cls(seed, parse_faults(spec))

    def _hit(self, name: str, *subject: object) -> bool:
        p = self.probabilities.get(name, 0.0)
        return p > 0.0 and unit_hash(self.seed, name, *subject) < p

    def transient(self, request_hash: str, attempt: int) -> bool:
        return self._hit("transient", request_hash, attempt)

    def lost_response(self, request_hash: str, attempt: int) -> bool:
        return self._hit("lost_response", request_hash, attempt) or self._hit("ambiguous", request_hash, attempt)

    def rejection(self, rail: str, idempotency_key: str) -> str | None:
        """The reason code of a definitive rejection, or None."""
        if rail == "sepa_instant" and self._hit("instant_unreachable", idempotency_key):
            return "AB08"
        if self._hit("reject", idempotency_key):
            return "AC04" if unit_hash(self.seed, "reject-code", idempotency_key) < 0.5 else "AC01"
        if self._hit("funding", idempotency_key):
            return "AM04"
        if self._hit("regulatory", idempotency_key):
            return "RR04"
        return None

    def return_after(self, idempotency_key: str) -> tuple[int, str] | None:
        """(business days until the return, reason code) for a returned payment, or None."""
        if not self._hit("return", idempotency_key):
            return None
        u = unit_hash(self.seed, "return-detail", idempotency_key)
        days = 1 + int(u * 3)  # 1..3 business days later
        reason = "AC04" if unit_hash(self.seed, "return-code", idempotency_key) < 0.5 else "MS03"
        return days, reason

    def vop_outcome(self, iban: str) -> str:
        """'match' | 'close' | 'nomatch' | 'unavailable' for an IBAN, stable per (seed, IBAN).

        One uniform draw per IBAN split into bands, so the outcomes exclude each
        other and each knob's probability holds on its own.
        """
        u = unit_hash(self.seed, "vop", iban.replace(" ", "").upper())
        for outcome, name in (("nomatch", "vop_nomatch"), ("close", "vop_close"),
                              ("unavailable", "vop_unavailable")):
            p = self.probabilities.get(name, 0.0)
            if u < p:
                return outcome
            u -= p
        return "match"
