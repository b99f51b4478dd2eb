"""The one catalogue of reason codes, as data: the row checks', the providers' answers, and
the ISO 20022 codes a provider rejects with.

Every held, rejected, cancelled or parked payout item carries reasons made by
`make()` (or `reason_expr()` for a polars frame): {"code", "iso_code", "text"}.
`code` is ours, stable and UPPER_SNAKE; `iso_code` is the ISO 20022 external
status reason code where one fits (None where none does); `text` is one
sentence naming the offending value where that is safe. `markdown_table()`
renders the catalogue for docs/reasons.md.

A provider's own ISO 20022 code (`PROVIDER_CODES`) has a class, and the class
says what the platform does (`ACTIONS`); a code not listed is 'unknown':
rejected, never fallen back, never retried under a new key.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import polars as pl

REJECTED = "rejected"
HELD = "held"


@dataclass(frozen=True)
class ReasonSpec:
    code: str
    iso_code: str | None
    decision: str          # 'rejected' | 'held'
    template: str          # str.format template; names are row values
    meaning: str           # one line for the documentation table


_SPECS = [
    # fields and destinations
    ReasonSpec("MISSING_FIELD", None, REJECTED, "Required field {field} is empty.",
               "A required column (payout_id, recipient_id, name, amount, currency) is empty."),
    ReasonSpec("MISSING_DESTINATION", "AC01", REJECTED,
               "No usable destination: give exactly one of an IBAN, a local account "
               "(account_number + routing_code) or a wallet (wallet_address + network); {detail}.",
               "None, several, or an incomplete one of IBAN / local account / wallet is given."),
    ReasonSpec("COUNTRY_INVALID", "BE09", REJECTED,
               "Country {country} is not an ISO 3166-1 alpha-2 country code.",
               "The country given is not a two-letter ISO country code (XK, Kosovo, is accepted)."),
    ReasonSpec("FORMULA_IN_CELL", None, HELD,
               "Field {field} starts with '=' ({value}): a spreadsheet formula, kept as text.",
               "A name or reference cell starts with '=' (formula injection); never evaluated."),
    # IBAN / BIC
    ReasonSpec("IBAN_COUNTRY_UNKNOWN", "AC01", REJECTED,
               "IBAN {iban} starts with {country}, which is not a country of the IBAN registry.",
               "The first two letters are not an IBAN country."),
    ReasonSpec("IBAN_FORMAT", "AC01", REJECTED,
               "IBAN {iban} does not have the length or structure of a {country} IBAN.",
               "Wrong length, characters or BBAN structure for the country."),
    ReasonSpec("IBAN_CHECKSUM", "AC01", REJECTED,
               "IBAN {iban} fails the mod-97 check digits.", "The ISO 7064 mod-97 check fails."),
    ReasonSpec("IBAN_NATIONAL_CHECKSUM", "AC01", REJECTED,
               "IBAN {iban} fails the national check digits of its bank account number.",
               "The country's own account check digits (as schwifty knows them) fail."),
    ReasonSpec("BIC_INVALID", "RC01", REJECTED,
               "BIC {bic} is not a valid 8 or 11 character BIC.", "Malformed BIC."),
    ReasonSpec("BIC_COUNTRY_MISMATCH", "RC01", HELD,
               "BIC {bic} is in {bic_country} but the account is in {country}.",
               "BIC country differs from the IBAN/account country (branches abroad exist: a person decides)."),
    # local accounts
    ReasonSpec("ROUTING_CODE_INVALID", "RC04", REJECTED,
               "Routing code {routing_code} is not a valid {scheme} for {country}.",
               "ABA / transit / BSB / IFSC / sort code / CLABE bank part fails its format or check digit."),
    ReasonSpec("ACCOUNT_NUMBER_INVALID", "AC01", REJECTED,
               "Account number {account_number} is not a valid {scheme} account for {country}.",
               "The local account number fails its format or check digit."),
    ReasonSpec("LOCAL_ACCOUNT_IN_IBAN_COUNTRY", "AC01", REJECTED,
               "{country} uses IBANs: give the IBAN instead of a local account number.",
               "A local account was given for a country whose accounts are paid by IBAN."),
    ReasonSpec("LOCAL_FORMAT_UNCHECKED", None, HELD,
               "We cannot check local account formats for {country}; a person must confirm it.",
               "Local account for a country with no format check here."),
    ReasonSpec("CURRENCY_NOT_SUPPORTED_FOR_DESTINATION", "AM03", REJECTED,
               "{currency} cannot be paid to this {dest_kind} account in {country}.",
               "The currency is not payable to that destination (see the currency rule table)."),
    # wallets
    ReasonSpec("NETWORK_UNKNOWN", "AC01", REJECTED,
               "Network {network} is not one we pay on.", "Unknown or unsupported network."),
    ReasonSpec("ASSET_NOT_ON_NETWORK", "AM03", REJECTED,
               "{currency} is not paid on {network}.",
               "The (asset, network) pair is not on the allow-list (e.g. USDC on tron)."),
    ReasonSpec("WALLET_INVALID", "AC01", REJECTED,
               "Wallet address {wallet_address} is not a valid {network} address.",
               "Bad characters, length, encoding or checksum for the network's address family."),
    ReasonSpec("WALLET_CHECKSUM", "AC01", REJECTED,
               "Wallet address {wallet_address} has a mixed-case EIP-55 checksum that does not match.",
               "A mixed-case EVM address whose EIP-55 checksum is wrong (a typo)."),
    ReasonSpec("WALLET_NO_CHECKSUM", None, HELD,
               "Wallet address {wallet_address} is all one case, so it carries no EIP-55 checksum.",
               "An all-lower/upper-case EVM address (held or accepted by policy evm_lowercase)."),
    ReasonSpec("WALLET_NETWORK_MISMATCH", "AC01", REJECTED,
               "Wallet address {wallet_address} is a {family} address, not a {network} one.",
               "The address belongs to another network family (or bitcoin testnet)."),
    ReasonSpec("WALLET_UNUSUAL_TYPE", None, HELD,
               "Wallet address {wallet_address} is an unusual kind of address ({detail}); a person must confirm it can receive.",
               "Valid but unusual: a segwit v2..16 address (no wallet spends these yet) or an "
               "off-curve solana key (a program-derived address)."),
    # amounts and currencies
    ReasonSpec("CURRENCY_UNKNOWN", "AM03", REJECTED,
               "Currency {currency} is not a currency or asset we pay in.", "Unknown currency code."),
    ReasonSpec("AMOUNT_INVALID", "AM12", REJECTED,
               "Amount {amount} is not a plain decimal number ({detail}).", "Not a plain decimal number (or an ambiguous separator)."),
    ReasonSpec("AMOUNT_NOT_POSITIVE", "AM12", REJECTED,
               "Amount {amount} is not positive.", "Zero or negative."),
    ReasonSpec("AMOUNT_DECIMALS", "AM12", REJECTED,
               "Amount {amount} has more decimals than {currency} allows ({detail}).",
               "More decimals than the currency's exponent; never rounded."),
    ReasonSpec("AMOUNT_TOO_LARGE", "AM02", REJECTED,
               "Amount {amount} is absurdly large ({detail} digits before the decimal point).",
               "More integer digits than any payout can have (beyond the bigint minor-unit range)."),
    ReasonSpec("AMOUNT_OVER_LIMIT", "AM02", HELD,
               "Amount {amount} {currency} is over the {detail}.",
               "Over a per-rail cap or a per-recipient limit from configuration."),
    # duplicates within a file / run
    ReasonSpec("DUPLICATE_PAYOUT_ID", "AM05", REJECTED,
               "Payout id {payout_id} already appears on an earlier row.",
               "A repeated payout id; the first row stands, later ones are rejected."),
    ReasonSpec("SHARED_DESTINATION", None, HELD,
               "Destination {destination} is shared by {detail} recipients.",
               "One account or wallet receives for several recipients."),
    # warehouse-backed checks (payout runs)
    ReasonSpec("DUPLICATE_RECENT_PAYMENT", "AM05", HELD,
               "{recipient_id} was already paid {amount} {currency} in a run of the last 30 days.",
               "The same recipient and amount were paid in a recent run."),
    ReasonSpec("DESTINATION_COOLING_OFF", None, HELD,
               "The payee's bank details changed recently; money waits {detail} before it goes there.",
               "A changed destination waits the configurable cooling-off period (payout-fraud guard)."),
    ReasonSpec("KYC_EXPIRED", None, HELD,
               "The identity verification of {recipient_id} has expired; compliance must renew it.",
               "Expired KYC: held until renewed."),
    ReasonSpec("KYC_UNVERIFIED_LIMIT", None, HELD,
               "{recipient_id} is not verified and this payment takes the month over the {detail} limit.",
               "An unverified recipient over the configurable monthly amount."),
    ReasonSpec("SANCTIONS_BLOCK", "RR04", HELD,
               "The payee matches sanctions list entry {detail}; the money stays frozen for compliance.",
               "A sanctions match above the block threshold: frozen, reported, never released to the payee."),
    ReasonSpec("SANCTIONS_REVIEW", "RR04", HELD,
               "The payee resembles sanctions list entry {detail}; compliance must review it.",
               "A possible sanctions match: a person clears or blocks it."),
    ReasonSpec("SANCTIONED_WALLET", "RR04", HELD,
               "Wallet {wallet_address} is listed on a sanctions list; the money stays frozen.",
               "A wallet address listed in the OFAC SDN remarks."),
    ReasonSpec("VOP_CLOSE_MATCH", None, HELD,
               "Verification of Payee: {detail}, close to but not the name on the payout ('{name}'); correct the"
               " payee name or confirm it before paying.",
               "The payee's bank answered close match (policy: held by default)."),
    ReasonSpec("VOP_NO_MATCH", None, HELD,
               "Verification of Payee: the name '{name}' does not match the account holder.",
               "The payee's bank answered no match (policy: held by default)."),
    ReasonSpec("VOP_NOT_POSSIBLE", None, HELD,
               "Verification of Payee was not possible for this IBAN; a person must confirm the payee.",
               "The bank could not verify (outside the scheme); held or ready by policy."),
    ReasonSpec("EMBARGOED_DESTINATION", "RR04", HELD,
               "Payments to {country} are embargoed ({detail}); the money stays frozen.",
               "An embargoed country or region (configurable)."),
]

# What a provider's answer, a stop or reconciliation gives an item after submission. The
# decision is the item's state; the ISO code is the provider's own, given to `make(iso=...)`.
_ANSWER_SPECS = [
    ReasonSpec("ACCOUNT_REJECTED", None, REJECTED,
               "The provider rejected the payment on {rail} with {iso}; the destination is blocked until"
               " the payee changes it.",
               "The provider rejected the destination (account level): money back to payable, the"
               " destination blocked until the payee changes it. Never falls back."),
    ReasonSpec("PROVIDER_REJECTED", None, REJECTED, "The provider rejected the payment on {rail} with {iso}.",
               "A rejection of unknown class: money back to payable, no fallback."),
    ReasonSpec("RAIL_REJECTED", None, "fallback", "{rail} could not carry the payment ({iso}); it falls back"
               " to the next rail.",
               "The rail could not carry the payment; it goes to the next rail of its chain under a new key."),
    ReasonSpec("NO_RAIL_LEFT", None, REJECTED, "{rail} rejected the payment ({iso}) and no fallback rail is"
               " left.", "A rail-level rejection with no fallback rail left."),
    ReasonSpec("RAIL_PAUSED_FUNDING", "AM04", HELD, "Rail {rail} paused, our account lacks funds ({iso}): {why}",
               "Our prefunded account lacks funds: the rail is paused, queued items wait for treasury."),
    ReasonSpec("REGULATORY_HOLD", None, HELD, "The provider held the payment for a regulatory reason ({iso});"
               " compliance must look.", "The provider held the payment for compliance."),
    ReasonSpec("STOPPED", None, "cancelled", "{why}", "The kill switch of the run or the rail: money back"
               " to payable."),
    ReasonSpec("NO_PROVIDER_ANSWER", None, "awaiting_status", "{why}",
               "The provider has no record of a payment whose answer was lost; operations confirm before"
               " anything is sent again."),
    ReasonSpec("CHAIN_REORG", None, "submitted", "The block of the payment's transaction is no longer on the"
               " chain; the same signed transaction was broadcast again.",
               "The block of the payment's chain transaction left the chain (a reorganisation): the send (and"
               " settlement) reversed, the same signed transaction broadcast again, the poll owns the item until it"
               " is confirmed again."),
    ReasonSpec("NO_STATUS_REPORT", None, "awaiting_status", "{why}",
               "A bank sent no pain.002 for the file within the connection's wait; operations ask the bank, the"
               " file is not sent again (its booking on a statement settles the item)."),
    ReasonSpec("FILE_UNCONFIRMED", None, "awaiting_status", "{why}",
               "An upload of the file may have reached the bank, its inbox cannot be listed and the bank does not"
               " refuse duplicate MsgIds: a person confirms with the bank."),
    ReasonSpec("FILE_NAME_TAKEN", None, "awaiting_status", "{why}",
               "Another file of the same name is in the bank's inbox; ours was not sent."),
    ReasonSpec("RETURNED", None, "returned", "The payment came back; the destination is blocked until the"
               " payee changes it.",
               "The payment came back days later (camt return); reversal posted, destination blocked."),
]

CATALOGUE: dict[str, ReasonSpec] = {s.code: s for s in _SPECS + _ANSWER_SPECS}
CHECK_CODES: frozenset[str] = frozenset(s.code for s in _SPECS)
REJECT_CODES: frozenset[str] = frozenset(s.code for s in _SPECS if s.decision == REJECTED)
HOLD_CODES: frozenset[str] = frozenset(s.code for s in _SPECS if s.decision == HELD)


# What finance reads in a run's summary: a held or rejected item's reason in a few words.
# The row checks' codes (CATALOGUE) and the codes submit, the kill switch and
# reconciliation give an item.
SHORT_LABELS: dict[str, str] = {
    "FORMULA_IN_CELL": "formula in a cell",
    "BIC_COUNTRY_MISMATCH": "BIC in another country",
    "LOCAL_FORMAT_UNCHECKED": "local account format unchecked",
    "WALLET_NO_CHECKSUM": "wallet without checksum",
    "WALLET_UNUSUAL_TYPE": "unusual wallet type",
    "AMOUNT_OVER_LIMIT": "over a limit",
    "SHARED_DESTINATION": "destination shared by several payees",
    "DUPLICATE_RECENT_PAYMENT": "possible duplicate of a recent payment",
    "DESTINATION_COOLING_OFF": "changed bank details, cooling off",
    "KYC_EXPIRED": "KYC expired",
    "KYC_UNVERIFIED_LIMIT": "KYC: unverified, over the monthly limit",
    "SANCTIONS_BLOCK": "sanctions match, frozen",
    "SANCTIONS_REVIEW": "sanctions review",
    "SANCTIONED_WALLET": "sanctioned wallet, frozen",
    "VOP_CLOSE_MATCH": "Verification of Payee: close match",
    "VOP_NO_MATCH": "Verification of Payee: no match",
    "VOP_NOT_POSSIBLE": "Verification of Payee: not possible",
    "EMBARGOED_DESTINATION": "embargoed destination, frozen",
    "RAIL_PAUSED_FUNDING": "rail paused: our account lacks funds",
    "REGULATORY_HOLD": "provider's regulatory hold",
    "ACCOUNT_REJECTED": "provider: account-level rejection",
    "PROVIDER_REJECTED": "provider rejection",
    "NO_RAIL_LEFT": "no rail left after a rail-level rejection",
    "STOPPED": "kill switch",
    "RETURNED": "returned by the payee's bank",
}
# Codes that hold an item (a person must act): the row checks' and the providers'.
HOLDING_CODES: frozenset[str] = frozenset(c for c, s in CATALOGUE.items() if s.decision == HELD)


def short_label(code: str) -> str:
    """A reason code in a few words (the code itself when it has no label)."""
    spec = CATALOGUE.get(code)
    return SHORT_LABELS.get(code) or (spec.meaning.rstrip(".") if spec else code)


def vop_close_match_detail(held_name: str | None) -> str:
    """VOP_CLOSE_MATCH's {detail}: the name the payee's bank holds, or that it gave none."""
    if held_name:
        return f"the bank holds the name '{held_name}' for this IBAN"
    return "the bank reports a close match without giving the name it holds"


def make(code: str, *, iso: str | None = None, **values: object) -> dict:
    """One reason dict for `code`, its template filled from `values` (missing names show as '?').

    `iso` is the provider's own ISO 20022 code for the answer codes; it is also the
    template's `{iso}`.
    """
    spec = CATALOGUE[code]
    values = {"iso": iso, **values}
    fields = {name: "?" if values.get(name) is None else values[name]
              for _, name, _, _ in string.Formatter().parse(spec.template) if name}
    return {"code": code, "iso_code": iso or spec.iso_code, "text": spec.template.format(**fields)}


def reason_expr(code: str, when: "pl.Expr", **values: "pl.Expr | str") -> "pl.Expr":
    """A struct {code, iso_code, text} where `when` holds, else null: a vectorised `make`.

    Template names are filled from `values` (polars expressions or literals);
    a null value shows as '?'.
    """
    import polars as pl

    spec = CATALOGUE[code]
    fmt_parts: list[str] = []
    args: list[pl.Expr] = []
    for literal, name, _, _ in string.Formatter().parse(spec.template):
        fmt_parts.append(literal)
        if name:
            fmt_parts.append("{}")
            value = values.get(name, "?")
            expr = value if isinstance(value, pl.Expr) else pl.lit(str(value))
            args.append(expr.cast(pl.Utf8).fill_null("?"))
    text = pl.format("".join(fmt_parts), *args) if args else pl.lit("".join(fmt_parts))
    return (
        pl.when(when.fill_null(False))
        .then(pl.struct(code=pl.lit(code), iso_code=pl.lit(spec.iso_code, dtype=pl.Utf8), text=text))
        .otherwise(None)
    )


def markdown_table(part: str = "checks") -> str:
    """The catalogue as a Markdown table (for docs/): the row checks' or ('answers') the providers'."""
    lines = ["| code | ISO 20022 | decision | meaning |", "|---|---|---|---|"]
    for spec in _SPECS if part == "checks" else _ANSWER_SPECS:
        iso = spec.iso_code or ", ".join(answer_codes(spec.code)) or "-"
        lines.append(f"| {spec.code} | {iso} | {spec.decision} | {spec.meaning} |")
    return "\n".join(lines) + "\n"


# -- the providers' ISO 20022 codes --------------------------------------------

# class -> action
#   transient      retry the same request under the same key (the connector does)
#   rail_level     the rail cannot carry it: fall back to the next rail, under a new key
#   account_level  the destination is wrong: reject, money back to payable, block the destination
#   funding        our own account lacks funds: pause the rail, hold the item for treasury
#   regulatory     hold the item for compliance
#   unknown        reject without fallback
ACTIONS: Final[dict[str, str]] = {
    "transient": "retry",
    "rail_level": "fallback",
    "account_level": "reject_and_block",
    "funding": "pause_rail",
    "regulatory": "hold",
    "unknown": "reject",
}
# class -> the catalogue's code an item gets (rail_level: NO_RAIL_LEFT when no rail is left)
ANSWER_CODE_OF_CLASS: Final[dict[str, str]] = {
    "rail_level": "RAIL_REJECTED",
    "account_level": "ACCOUNT_REJECTED",
    "funding": "RAIL_PAUSED_FUNDING",
    "regulatory": "REGULATORY_HOLD",
    "unknown": "PROVIDER_REJECTED",
}


@dataclass(frozen=True)
class ProviderCode:
    code: str
    klass: str
    meaning: str


PROVIDER_CODES: Final[dict[str, ProviderCode]] = {
    r.code: r
    for r in [
        ProviderCode("AB05", "rail_level", "timeout at the creditor agent (instant)"),
        ProviderCode("AB06", "rail_level", "timeout at the instructed agent (instant)"),
        ProviderCode("AB08", "rail_level", "creditor agent offline"),
        ProviderCode("AM02", "rail_level", "amount above the rail's maximum"),
        ProviderCode("AM03", "rail_level", "currency not allowed on the rail"),
        ProviderCode("AC01", "account_level", "incorrect account number"),
        ProviderCode("AC03", "account_level", "invalid creditor account number"),
        ProviderCode("AC04", "account_level", "closed account"),
        ProviderCode("AC06", "account_level", "blocked account"),
        ProviderCode("AC13", "account_level", "invalid debtor account type"),
        ProviderCode("BE01", "account_level", "inconsistent with end customer"),
        ProviderCode("MD07", "account_level", "end customer deceased"),
        ProviderCode("AM04", "funding", "insufficient funds on our account"),
        ProviderCode("RR04", "regulatory", "regulatory reason"),
        ProviderCode("RR01", "regulatory", "missing debtor account or identification"),
        ProviderCode("MS03", "unknown", "reason not specified"),
        ProviderCode("AM05", "unknown", "duplication"),
        ProviderCode("BE05", "unknown", "unrecognised initiating party"),
    ]
}


def classify(code: str | None) -> str:
    """The class of a provider reason code ('unknown' for codes not in the table)."""
    entry = PROVIDER_CODES.get(code or "")
    return entry.klass if entry else "unknown"


def answer_codes(code: str) -> list[str]:
    """The provider ISO codes that give an item the catalogue's answer `code`."""
    if code == "NO_RAIL_LEFT":
        code = "RAIL_REJECTED"
    return [c for c, r in PROVIDER_CODES.items() if ANSWER_CODE_OF_CLASS.get(r.klass) == code]
