"""Bank-account checks for payees: IBAN, BIC, SEPA reachability, local account formats, currency fit.

Vectorised in polars over a frame of rows; the per-value library calls
(schwifty for IBAN/BIC, python-stdnum for local schemes) run once per distinct
value and are joined back. Reasons come from `payouts.core.reasons`.

Rules worth knowing (all data below, so they can be read and changed):

- IBAN normalisation: upper-case, drop whitespace (incl. no-break space),
  hyphens and dots, and a leading "IBAN"/"IBAN:" label. Then schwifty
  `IBAN(x, validate_bban=True)`: registry country, length/structure, mod-97,
  and national check digits where schwifty has the algorithm (countries
  without one pass unchecked, as schwifty's warning says).
- SEPA reachability ('yes' | 'no' | 'unknown'): 'no' when the account's
  country is outside the SEPA scheme (or it is not an IBAN at all); 'yes' only
  when the country is in the EEA, where Regulation (EU) 260/2012 obliges every
  PSP reachable for a national credit transfer to be reachable by SEPA credit
  transfer, *and* schwifty's bank registry knows the bank code; 'unknown'
  otherwise (unknown bank, non-EEA SEPA countries such as CH or GB, or an
  invalid IBAN). We never claim 'yes' on country alone.
- Currency fit (CURRENCY_NOT_SUPPORTED_FOR_DESTINATION): see `payable_currencies`.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from payouts.core.reasons import reason_expr
from payouts.core.money import EXPONENTS
from payouts.core.routing import SEPA_COUNTRIES

# EEA members: SEPA reachability is a legal obligation there (Reg. 260/2012 art. 3).
EEA_COUNTRIES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO".split()
)

# Currencies payable to any bank account through the swift rail.
SWIFT_CURRENCIES = frozenset({"USD", "EUR"})

# Each country's own currency: payable to its accounts on a local rail (or swift).
COUNTRY_CURRENCY: dict[str, str] = {
    **{c: "EUR" for c in "AT BE HR CY EE FI FR DE GR IE IT LV LT LU MT NL PT SK SI ES "
                         "AD MC SM VA ME XK".split()},
    "BG": "BGN", "CZ": "CZK", "DK": "DKK", "HU": "HUF", "PL": "PLN", "RO": "RON", "SE": "SEK",
    "IS": "ISK", "LI": "CHF", "NO": "NOK", "CH": "CHF", "GB": "GBP", "GI": "GBP", "AL": "ALL",
    "FO": "DKK", "GL": "DKK", "FK": "GBP",  # GIP and FKP are pegged 1:1 and paid in sterling
    "MD": "MDL", "MK": "MKD", "RS": "RSD", "BA": "BAM", "GE": "GEL", "UA": "UAH", "BY": "BYN",
    "AZ": "AZN", "KZ": "KZT", "TR": "TRY", "IL": "ILS", "AE": "AED", "SA": "SAR", "QA": "QAR",
    "BH": "BHD", "KW": "KWD", "JO": "JOD", "EG": "EGP", "TN": "TND", "MA": "MAD", "PK": "PKR",
    "BR": "BRL", "CR": "CRC", "DO": "DOP", "GT": "GTQ", "US": "USD", "CA": "CAD", "AU": "AUD",
    "NZ": "NZD", "IN": "INR", "MX": "MXN", "JP": "JPY", "SG": "SGD", "HK": "HKD", "ZA": "ZAR",
    "NG": "NGN", "KE": "KES", "PH": "PHP", "ID": "IDR", "TH": "THB", "MY": "MYR", "KR": "KRW",
    "CN": "CNY", "CL": "CLP", "CO": "COP", "PE": "PEN", "AR": "ARS", "VN": "VND",
    "CI": "XOF", "SN": "XOF", "BJ": "XOF", "BF": "XOF", "ML": "XOF", "NE": "XOF", "TG": "XOF",
    "GW": "XOF", "CM": "XAF", "CF": "XAF", "TD": "XAF", "CG": "XAF", "GA": "XAF", "GQ": "XAF",
}


def payable_currencies(dest_kind: str, country: str | None, has_bic: bool) -> frozenset[str]:
    """The rule table in one function (mirrored by the vectorised `_currency_ok`).

    iban:  EUR anywhere (SEPA inside the scheme, swift outside), USD anywhere
           via swift, and the account country's own currency.
    local: the country's own currency; USD/EUR too when a BIC is given (swift).
    """
    local = {COUNTRY_CURRENCY[country]} if country in COUNTRY_CURRENCY else set()
    if dest_kind == "iban" or has_bic:
        return frozenset(local | SWIFT_CURRENCIES)
    return frozenset(local)


# --- IBAN -------------------------------------------------------------------

_IBAN_ERRORS = {
    "InvalidCountryCode": "IBAN_COUNTRY_UNKNOWN",
    "InvalidChecksumDigits": "IBAN_CHECKSUM",
    "InvalidBBANChecksum": "IBAN_NATIONAL_CHECKSUM",
}


def normalise_iban_expr(col: pl.Expr) -> pl.Expr:
    """Upper-case, drop whitespace/hyphens/dots and a leading 'IBAN' label."""
    return (
        col.str.to_uppercase()
        .str.replace_all(r"[\s\x{00A0}\x{202F}\-.]", "")
        .str.replace(r"^IBAN:?([A-Z]{2}[0-9]{2})", "${1}")
    )


def normalise_iban(value: str) -> str:
    """The scalar twin of `normalise_iban_expr` (for tests and one-off use)."""
    text = re.sub(r"[\s\u00a0\u202f\-.]", "", value.upper())
    return re.sub(r"^IBAN:?([A-Z]{2}[0-9]{2})", r"\1", text)


@dataclass(frozen=True)
class IbanVerdict:
    code: str | None          # a reason code, or None when the IBAN is valid
    country: str | None
    bank_known: bool
    bank_bic: str | None


class _BankCache:
    """schwifty's bank lookup, once per (country, bank code, branch code)."""

    def __init__(self) -> None:
        self._banks: dict[tuple[str, str, str], tuple[bool, str | None]] = {}

    def lookup(self, iban) -> tuple[bool, str | None]:
        key = (iban.country_code, iban.bank_code, iban.branch_code)
        hit = self._banks.get(key)
        if hit is None:
            bank = iban.bank
            hit = (bank is not None, (bank.get("bic") if isinstance(bank, dict) else getattr(bank, "bic", None)) if bank else None)
            self._banks[key] = hit
        return hit


def iban_verdicts(values: list[str]) -> list[IbanVerdict]:
    """Check normalised IBANs with schwifty (one call per value; callers pass distinct values)."""
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    banks = _BankCache()
    out: list[IbanVerdict] = []
    with warnings.catch_warnings():
        # NationalChecksumNotVerified: countries without a known national algorithm pass unchecked.
        warnings.simplefilter("ignore")
        for value in values:
            country = value[:2] if len(value) >= 2 else None
            try:
                iban = IBAN(value, validate_bban=True)
            except SchwiftyException as exc:
                out.append(IbanVerdict(_IBAN_ERRORS.get(type(exc).__name__, "IBAN_FORMAT"), country, False, None))
                continue
            except Exception:  # anything else schwifty trips on is a malformed IBAN
                out.append(IbanVerdict("IBAN_FORMAT", country, False, None))
                continue
            known, bic = banks.lookup(iban)
            out.append(IbanVerdict(None, iban.country_code, known, str(bic) if bic else None))
    return out


# --- BIC --------------------------------------------------------------------

def bic_countries(values: list[str]) -> list[str | None]:
    """The BIC's country for each valid BIC, None for an invalid one (schwifty.BIC)."""
    from schwifty import BIC
    from schwifty.exceptions import SchwiftyException

    out: list[str | None] = []
    for value in values:
        try:
            out.append(BIC(value).country_code)
        except (SchwiftyException, ValueError):
            out.append(None)
    return out


# --- local account schemes ---------------------------------------------------

def _digits(value: str) -> str:
    return re.sub(r"[\s\-./]", "", value)


def _us_routing(value: str) -> str | None:
    from stdnum.us import rtn
    v = _digits(value)
    return v if rtn.is_valid(v) else None


def _ca_routing(value: str) -> str | None:
    """'TTTTT-III', 'TTTTTIII' or electronic '0IIITTTTT' -> 'TTTTTIII'."""
    v = _digits(value)
    if re.fullmatch(r"\d{8}", v):
        return v
    if re.fullmatch(r"0\d{8}", v):
        return v[4:] + v[1:4]
    return None


def _au_bsb(value: str) -> str | None:
    """6 digits; the third is the state digit, 2..7 (ACT/NSW, VIC, QLD, SA/NT, WA, TAS)."""
    v = _digits(value)
    return v if re.fullmatch(r"\d{2}[2-7]\d{3}", v) else None


def _in_ifsc(value: str) -> str | None:
    v = value.strip().upper()
    return v if re.fullmatch(r"[A-Z]{4}0[A-Z0-9]{6}", v) else None


def _gb_sort_code(value: str) -> str | None:
    v = _digits(value)
    return v if re.fullmatch(r"\d{6}", v) else None


def _digits_between(low: int, high: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        v = _digits(value)
        return v if re.fullmatch(rf"\d{{{low},{high}}}", v) else None
    return check


def clabe_is_valid(clabe: str) -> bool:
    """Mexican CLABE: 18 digits, last is (10 - sum(d_i * w_i mod 10) mod 10) mod 10, w = 3,7,1,..."""
    if not re.fullmatch(r"\d{18}", clabe):
        return False
    total = sum((int(d) * w) % 10 for d, w in zip(clabe[:17], [3, 7, 1] * 6))
    return (10 - total % 10) % 10 == int(clabe[17])


def _mx_bank(value: str) -> str | None:
    v = _digits(value)
    return v if re.fullmatch(r"\d{3}", v) else None


def _mx_clabe(value: str) -> str | None:
    v = _digits(value)
    return v if clabe_is_valid(v) else None


@dataclass(frozen=True)
class LocalScheme:
    name: str
    routing: Callable[[str], str | None]   # normalised routing code, or None when invalid
    account: Callable[[str], str | None]   # normalised account number, or None when invalid


LOCAL_SCHEMES: dict[str, LocalScheme] = {
    "US": LocalScheme("ABA routing number", _us_routing, _digits_between(4, 17)),
    "CA": LocalScheme("transit/institution number", _ca_routing, _digits_between(7, 12)),
    "AU": LocalScheme("BSB", _au_bsb, _digits_between(5, 10)),
    "IN": LocalScheme("IFSC", _in_ifsc, _digits_between(9, 18)),
    "MX": LocalScheme("CLABE", _mx_bank, _mx_clabe),
    "GB": LocalScheme("sort code", _gb_sort_code, _digits_between(8, 8)),
    "JP": LocalScheme("Zengin bank+branch code", _digits_between(7, 7), _digits_between(7, 7)),
    "SG": LocalScheme("bank+branch code", _digits_between(7, 7), _digits_between(7, 14)),
    "NZ": LocalScheme("bank+branch number", _digits_between(6, 6), _digits_between(9, 10)),
    # Format-level schemes (lengths of the national formats; no public check digit).
    "KR": LocalScheme("bank code", _digits_between(3, 3), _digits_between(10, 14)),
    "ZA": LocalScheme("universal branch code", _digits_between(6, 6), _digits_between(9, 11)),
    "HK": LocalScheme("bank+branch code", _digits_between(6, 6), _digits_between(6, 12)),
    "NG": LocalScheme("CBN bank code", _digits_between(3, 3), _digits_between(10, 10)),
    "KE": LocalScheme("bank+branch code", _digits_between(5, 5), _digits_between(10, 14)),
    "PH": LocalScheme("BRSTN", _digits_between(9, 9), _digits_between(10, 16)),
    "ID": LocalScheme("bank+branch code", _digits_between(3, 7), _digits_between(10, 16)),
    "TH": LocalScheme("bank+branch code", _digits_between(7, 7), _digits_between(10, 12)),
    "MY": LocalScheme("bank SWIFT code", lambda v: (v or "").strip().upper() if re.fullmatch(
        r"[A-Z]{4}MY[A-Z0-9]{2}", (v or "").strip().upper()) else None, _digits_between(10, 16)),
    "CN": LocalScheme("CNAPS code", _digits_between(12, 12), _digits_between(16, 19)),
    "CL": LocalScheme("bank code", _digits_between(3, 3), _digits_between(8, 12)),
    "CO": LocalScheme("bank code", _digits_between(4, 4), _digits_between(10, 11)),
    "PE": LocalScheme("bank+office code", _digits_between(6, 6), _digits_between(13, 20)),
    "AR": LocalScheme("bank+branch code", _digits_between(7, 7), _digits_between(14, 14)),
    "VN": LocalScheme("bank BIN", _digits_between(6, 6), _digits_between(9, 14)),
}

# Territories whose accounts carry the IBAN or local details of their country.
TERRITORY_OF: dict[str, str] = {
    **{t: "FR" for t in "GF GP MQ RE YT PM BL MF NC PF WF TF".split()},
    **{t: "GB" for t in "GG JE IM".split()}, "AX": "FI",
}


def _nz_full_ok(routing: str, account: str) -> bool:
    from stdnum.nz import bankaccount
    return bankaccount.is_valid(routing + account)


def local_verdicts(rows: list[tuple[str | None, str, str]]) -> list[tuple[str | None, str | None, str | None]]:
    """(country, routing, account) -> (reason code or None, normalised routing, normalised account)."""
    out = []
    for country, routing, account in rows:
        scheme = LOCAL_SCHEMES.get(country or "")
        if scheme is None:
            code = "LOCAL_ACCOUNT_IN_IBAN_COUNTRY" if _has_iban_spec(country or "") else "LOCAL_FORMAT_UNCHECKED"
            out.append((code, _digits(routing), _digits(account)))
            continue
        r, a = scheme.routing(routing), scheme.account(account)
        if r is None:
            out.append(("ROUTING_CODE_INVALID", _digits(routing), a or _digits(account)))
        elif a is None:
            out.append(("ACCOUNT_NUMBER_INVALID", r, _digits(account)))
        elif country == "MX" and a[:3] != r:
            out.append(("ROUTING_CODE_INVALID", r, a))
        elif country == "NZ" and not _nz_full_ok(r, a):
            out.append(("ACCOUNT_NUMBER_INVALID", r, a))
        else:
            out.append((None, r, a))
    return out


@functools.cache
def _has_iban_spec(country: str) -> bool:
    from schwifty import registry
    try:
        registry.get_iban_spec(country)
        return True
    except Exception:
        return False


# --- the vectorised check ------------------------------------------------------

# Above this many distinct values, library calls are spread over worker processes.
PARALLEL_MIN_VALUES = 50_000


def _run_chunked(fn, rows: list, workers: int = 1) -> list:
    """fn(rows) in this process, or split over `workers` spawned processes for large inputs.

    Opt-in (CheckPolicy.workers): spawn re-imports the caller's __main__, which must
    be guarded by `if __name__ == "__main__"`; if the pool breaks we fall back to serial.
    """
    if workers < 2 or len(rows) < PARALLEL_MIN_VALUES:
        return fn(rows)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    size = -(-len(rows) // workers)
    chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
    try:
        # spawn, not fork: polars' thread pool does not survive a fork.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            return [item for part in pool.map(fn, chunks) for item in part]
    except (BrokenProcessPool, RuntimeError, OSError):
        return fn(rows)


def _apply_distinct(df: pl.DataFrame, keys: list[str], fn, schema: dict[str, pl.DataType],
                    workers: int = 1) -> pl.DataFrame:
    """Call `fn(list of key tuples)` once on the distinct non-null keys; left-join the results back.

    `fn` must be a module-level function (it may run in worker processes).
    """
    distinct = df.select(keys).drop_nulls().unique()
    if distinct.height == 0:
        return df.with_columns([pl.lit(None, dtype=t).alias(n) for n, t in schema.items()])
    rows = distinct.rows() if len(keys) > 1 else distinct.to_series().to_list()
    results = _run_chunked(fn, rows, workers)
    result_frame = pl.DataFrame(results, schema=schema, orient="row")
    joined = pl.concat([distinct, result_frame], how="horizontal")
    return df.join(joined, on=keys, how="left", maintain_order="left", nulls_equal=False)


def _iban_rows(values: list[str]) -> list[tuple]:
    return [(v.code, v.country, v.bank_known, v.bank_bic) for v in iban_verdicts(values)]


def _bic_rows(values: list[str]) -> list[tuple]:
    return [(c,) for c in bic_countries(values)]


def check_accounts(df: pl.DataFrame, *, workers: int = 1) -> pl.DataFrame:
    """Add account checks to a normalised frame (see rows.normalise_input).

    Needs: dest_kind, country, currency, iban_norm, bic_norm, account_number, routing_code.
    Adds: account_country, sepa_reachable, bank_destination, and `_rsn_*` reason columns.
    """
    is_iban = pl.col("dest_kind") == "iban"
    is_local = pl.col("dest_kind") == "local"

    df = df.with_columns(_iban_key=pl.when(is_iban).then(pl.col("iban_norm")))
    df = _apply_distinct(df, ["_iban_key"], _iban_rows, {
        "_iban_code": pl.Utf8, "_iban_country": pl.Utf8, "_bank_known": pl.Boolean, "_bank_bic": pl.Utf8},
        workers)

    df = df.with_columns(_local_country=pl.when(is_local).then(pl.col("country")).otherwise(None),
                         _local_routing=pl.when(is_local).then(pl.col("routing_code")),
                         _local_account=pl.when(is_local).then(pl.col("account_number")))
    df = _apply_distinct(df, ["_local_country", "_local_routing", "_local_account"], local_verdicts, {
        "_local_code": pl.Utf8, "_routing_norm": pl.Utf8, "_account_norm": pl.Utf8})

    df = _apply_distinct(df, ["bic_norm"], _bic_rows, {"_bic_country": pl.Utf8})

    account_country = (
        pl.when(is_iban).then(pl.col("_iban_country")).when(is_local).then(pl.col("country")).otherwise(None)
    )
    df = df.with_columns(account_country=account_country)
    iban_ok = is_iban & pl.col("_iban_code").is_null()
    sepa = (
        pl.when(~is_iban | pl.col("dest_kind").is_null()).then(pl.lit("no"))
        .when(~iban_ok).then(pl.lit("unknown"))
        .when(~pl.col("account_country").is_in(sorted(SEPA_COUNTRIES))).then(pl.lit("no"))
        .when(pl.col("account_country").is_in(sorted(EEA_COUNTRIES)) & pl.col("_bank_known").fill_null(False))
        .then(pl.lit("yes"))
        .otherwise(pl.lit("unknown"))
    )
    local_currency = pl.col("account_country").replace_strict(COUNTRY_CURRENCY, default=None, return_dtype=pl.Utf8)
    swift_ok = pl.col("currency").is_in(sorted(SWIFT_CURRENCIES)) & (is_iban | pl.col("bic_norm").is_not_null())
    currency_ok = (pl.col("currency") == local_currency).fill_null(False) | swift_ok
    bank_valid = (iban_ok | (is_local & pl.col("_local_code").is_null()))
    bic_valid = pl.col("bic_norm").is_not_null() & pl.col("_bic_country").is_not_null()
    scheme_name = pl.col("country").replace_strict(
        {c: s.name for c, s in LOCAL_SCHEMES.items()}, default="local code", return_dtype=pl.Utf8)

    df = df.with_columns(
        sepa_reachable=sepa,
        bank_destination=pl.when(is_iban).then(pl.col("iban_norm"))
        .when(is_local).then(pl.format("{}:{}:{}", pl.col("country"), pl.col("_routing_norm"), pl.col("_account_norm"))),
        _rsn_iban=pl.coalesce(*[
            reason_expr(code, is_iban & (pl.col("_iban_code") == code), iban=pl.col("iban_norm"), country=pl.col("_iban_country"))
            for code in ("IBAN_COUNTRY_UNKNOWN", "IBAN_FORMAT", "IBAN_CHECKSUM", "IBAN_NATIONAL_CHECKSUM")
        ]),
        _rsn_local=pl.coalesce(*[
            reason_expr(code, is_local & (pl.col("_local_code") == code), country=pl.col("country").fill_null("?"),
                        routing_code=pl.col("routing_code"), account_number=pl.col("account_number"), scheme=scheme_name)
            for code in ("ROUTING_CODE_INVALID", "ACCOUNT_NUMBER_INVALID", "LOCAL_ACCOUNT_IN_IBAN_COUNTRY",
                         "LOCAL_FORMAT_UNCHECKED")
        ]),
        _rsn_bic=reason_expr("BIC_INVALID", (is_iban | is_local) & pl.col("bic_norm").is_not_null()
                             & pl.col("_bic_country").is_null(), bic=pl.col("bic_norm")),
        _rsn_bic_country=reason_expr(
            "BIC_COUNTRY_MISMATCH", bank_valid & bic_valid
            & (pl.col("_bic_country").replace(TERRITORY_OF) != pl.col("account_country").replace(TERRITORY_OF)),
            bic=pl.col("bic_norm"), bic_country=pl.col("_bic_country"), country=pl.col("account_country")),
        _rsn_currency=reason_expr(
            "CURRENCY_NOT_SUPPORTED_FOR_DESTINATION",
            # an unknown currency is CURRENCY_UNKNOWN alone
            bank_valid & pl.col("currency").is_in(sorted(EXPONENTS)) & ~currency_ok,
            currency=pl.col("currency"), dest_kind=pl.col("dest_kind"), country=pl.col("account_country")),
    )
    return df.drop("_iban_key", "_iban_code", "_iban_country", "_bank_known", "_bank_bic", "_local_country",
                   "_local_routing", "_local_account", "_local_code", "_routing_norm", "_account_norm", "_bic_country")
