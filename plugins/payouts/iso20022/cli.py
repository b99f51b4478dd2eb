"""`payouts pain001 FILE`: the ready IBAN rows of a payout file as one pain.001, validated and written atomically.

Rows that are not ready, not payable by credit transfer, or not writable
(an id that cannot be an EndToEndId, a name with no Latin letters) are left
out and listed on stderr, one line each. Exit 0 when the file is written
(even with rows left out), 2 when nothing can be written or the input is bad.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from payouts.iso20022.pain001 import (
    VERSIONS,
    CreditTransfer,
    Debtor,
    Pain001Error,
    debtor_problems,
    payment_problems,
    validate,
    write_pain001,
)

PROG = "payouts pain001"
NON_SEPA_CHARGE_BEARERS = ("SHAR", "DEBT", "CRED")


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):   # argparse would sys.exit; main() returns its code instead
        raise _Usage(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Write the ready IBAN rows of a payout file as an ISO 20022 pain.001.")
    parser.add_argument("file", help="payout file (CSV or XLSX), as `payouts check` reads it")
    parser.add_argument("--debtor-name", required=True)
    parser.add_argument("--debtor-iban", required=True)
    parser.add_argument("--debtor-bic", help="the debtor bank's BIC (SEPA allows leaving it out)")
    parser.add_argument("--instant", action="store_true", help="SCT Inst (LclInstrm INST): EUR rows only")
    parser.add_argument("--version", choices=VERSIONS, default="001.001.09", help="pain.001 version")
    parser.add_argument("--charge-bearer", choices=NON_SEPA_CHARGE_BEARERS, default="SHAR",
                        help="charge bearer of non-SEPA rows (SEPA rows are always SLEV)")
    parser.add_argument("--execution-date", help="requested execution date, YYYY-MM-DD (default: today, UTC)")
    parser.add_argument("--message-id", help="GrpHdr/MsgId (default: PAYOUTS-<timestamp>-<random>)")
    parser.add_argument("--out", required=True, help="the pain.001 XML file to write")
    return parser


@dataclass(frozen=True)
class LeftOut:
    row: int
    payout_id: str | None
    decision: str          # rejected | held | not_payable
    reasons: list[dict]    # {code, text}

    def line(self) -> str:
        from payouts.core.masking import mask_text  # stderr shows a destination by its last four characters

        why = "; ".join(f"{r['code']}: {mask_text(r['text'])}" for r in self.reasons)
        return f"{PROG}: left out row {self.row} (payout {self.payout_id or '-'}): {self.decision}: {why}"


def _not_payable(code: str, text: str) -> list[dict]:
    return [{"code": code, "text": text}]


def select_payments(checked, *, instant: bool, version: str, charge_bearer: str = "SHAR",
                    ) -> tuple[list[CreditTransfer], list[LeftOut]]:
    """Split checked rows (payouts.checks.rows.check_rows output) into credit transfers and rows left out."""
    payments: list[CreditTransfer] = []
    left_out: list[LeftOut] = []
    columns = ["row", "payout_id", "decision", "reasons", "dest_kind", "iban_norm", "bic_norm", "name",
               "currency", "amount_minor", "account_country", "sepa_reachable", "reference"]
    for record in checked.select([c for c in columns if c in checked.columns]).iter_rows(named=True):
        row, payout_id = record["row"], record["payout_id"]
        if record["decision"] != "ready":
            reasons = [{"code": r["code"], "text": r["text"]} for r in record["reasons"] or []]
            left_out.append(LeftOut(row, payout_id, record["decision"], reasons))
            continue
        if record["dest_kind"] != "iban":
            kind = {"local": "a local bank account", "wallet": "a crypto wallet"}.get(record["dest_kind"], "no IBAN")
            left_out.append(LeftOut(row, payout_id, "not_payable", _not_payable(
                "NO_IBAN", f"the destination is {kind}; a pain.001 here pays IBANs only")))
            continue
        currency = record["currency"]
        sepa = currency == "EUR" and record["sepa_reachable"] != "no"
        if instant and not sepa:
            why = (f"SCT Inst pays only EUR, not {currency}" if currency != "EUR"
                   else f"the account's country {record['account_country']} is not reachable by SEPA")
            left_out.append(LeftOut(row, payout_id, "not_payable", _not_payable("NOT_SCT_INST", why)))
            continue
        payment = CreditTransfer(
            end_to_end_id=payout_id, amount_minor=record["amount_minor"], currency=currency,
            creditor_name=record["name"], creditor_iban=record["iban_norm"], creditor_bic=record["bic_norm"],
            remittance=record.get("reference"), charge_bearer="SLEV" if sepa else charge_bearer,
        )
        problems = payment_problems(payment, version=version, instant=instant)
        if problems:
            left_out.append(LeftOut(row, payout_id, "not_payable", [
                {"code": "NOT_WRITABLE", "text": p} for p in problems]))
            continue
        payments.append(payment)
    return payments, left_out


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file next to `path`, then rename it over `path`.

    Readers never see half a file, and a failed run leaves an earlier file as it was. The file
    keeps mkstemp's mode 0600: a payment instruction is for its owner only.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None, *, out=None, err=None) -> int:
    """`payouts pain001 FILE ...`; a JSON summary on stdout, left-out rows and errors on stderr."""
    out = out or sys.stdout
    err = err or sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "pain001":
        args_list = args_list[1:]
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except _Usage as exc:
        print(parser.format_usage().rstrip(), file=err)
        print(f"{PROG}: {exc}", file=err)
        return 2
    except SystemExit as exc:   # --help
        return int(exc.code or 0)

    debtor = Debtor(name=args.debtor_name, iban=args.debtor_iban, bic=args.debtor_bic or None)
    problems = debtor_problems(debtor, version=args.version)
    if problems:
        for problem in problems:
            print(f"{PROG}: {problem}", file=err)
        return 2
    out_path = Path(args.out)
    if not out_path.parent.is_dir():
        print(f"{PROG}: cannot write {out_path}: {out_path.parent} is not a directory", file=err)
        return 2

    from payouts.checks.payout_file import PayoutFileError, read_payout_file
    from payouts.checks.rows import check_rows

    try:
        frame, warnings = read_payout_file(args.file)
    except PayoutFileError as exc:
        print(f"{PROG}: {exc}", file=err)
        return 2
    for warning in warnings:
        print(f"{PROG}: warning: {warning}", file=err)
    checked = check_rows(frame)
    payments, left_out = select_payments(checked, instant=args.instant, version=args.version,
                                         charge_bearer=args.charge_bearer)
    for row in left_out:
        print(row.line(), file=err)
    if not payments:
        print(f"{PROG}: no row of {args.file} is payable by credit transfer ({len(left_out)} left out); "
              f"nothing written", file=err)
        return 2

    try:
        document = write_pain001(payments, debtor, version=args.version, instant=args.instant,
                                 message_id=args.message_id, execution_date=args.execution_date,
                                 validate_output=False)
    except (Pain001Error, ValueError) as exc:    # a bad --message-id or --execution-date
        print(f"{PROG}: {exc}", file=err)
        return 2
    errors = validate(document, args.version)
    if errors:   # a bug on our side, not bad input: say so and write nothing
        print(f"{PROG}: internal error: the pain.{args.version} does not validate against its XSD; "
              f"nothing written:", file=err)
        for error in errors[:20]:
            print(f"  {error}", file=err)
        return 1
    try:
        write_atomically(out_path, document)
    except OSError as exc:
        print(f"{PROG}: cannot write {out_path}: {exc.strerror or exc}", file=err)
        return 2

    from lxml import etree

    header = etree.fromstring(document).find("{*}CstmrCdtTrfInitn/{*}GrpHdr")
    summary = {"out": str(out_path), "version": args.version, "instant": args.instant,
               "message_id": header.findtext("{*}MsgId"), "payments": len(payments),
               "ctrl_sum": header.findtext("{*}CtrlSum"), "left_out": len(left_out)}
    out.write(json.dumps(summary) + "\n")
    print(f"{PROG}: wrote {out_path}: {len(payments)} payment(s), CtrlSum {summary['ctrl_sum']}, "
          f"{len(left_out)} row(s) left out", file=err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
