"""Payee destinations (IBANs, account numbers, wallet addresses) masked wherever text leaves a process.

The rule: only the last four characters of a destination stay visible, behind
a fixed run of twelve asterisks, so neither the value nor its length shows:
`mask("DE89 3704 0044 0532 0130 00")` is `************3000`. Logs, exception
messages and command output go through `mask_text`; `install()` puts the
masking into Python logging (and structlog, which Airflow's task logs use).
Warehouse data is never masked: finance reads the full values there.
"""

from __future__ import annotations

import functools
import logging
import re
import traceback
from collections.abc import Iterable
from typing import Any

VISIBLE = 4
MASK_RUN = "*" * 12

_WORD = r"0-9A-Za-z"
# EVM: 0x + 40 hex (any case; the EIP-55 checksum is in the case).
_EVM = rf"0x[0-9a-fA-F]{{40}}"
# Bitcoin/Litecoin segwit (bech32/bech32m), either case as the spec allows.
_BECH32 = r"(?i:(?:bc|tb|bcrt|ltc)1[02-9ac-hj-np-z]{11,87})"
# IBAN written compact (15-34 characters) or in groups of four, either case.
_IBAN = r"[A-Za-z]{2}[0-9]{2}[A-Za-z0-9]{11,30}"
_IBAN_GROUPED = r"[A-Za-z]{2}[0-9]{2}(?: [A-Za-z0-9]{4}){2,7}(?: [A-Za-z0-9]{1,3})?"
# Base58: Bitcoin legacy (1.../3...), Tron (T...), Solana keys (32-44).
_BASE58 = r"[1-9A-HJ-NP-Za-km-z]{25,44}"
# A bare run of 8-34 digits: an account number (not part of an id, a date or a decimal amount).
_DIGITS = r"[0-9]{8,34}"

_PATTERN = re.compile(
    rf"(?<![{_WORD}])(?:(?P<evm>{_EVM})|(?P<bech32>{_BECH32})|(?P<grouped>{_IBAN_GROUPED})"
    rf"|(?P<iban>{_IBAN})|(?P<base58>{_BASE58}))(?![{_WORD}])"
    rf"|(?<![{_WORD}\-._])(?P<digits>{_DIGITS})(?![{_WORD}\-_]|[.,][0-9])"
)
_SEPARATORS = re.compile(r"[\s\-]")


def mask(value: object) -> str | None:
    """`************` + the last four characters (spaces and dashes dropped); None stays None.

    Four characters or fewer are hidden entirely: showing "the last four" of them
    would show all of it.
    """
    if value is None:
        return None
    compact = _SEPARATORS.sub("", str(value))
    if not compact:
        return ""
    if len(compact) <= VISIBLE:
        return "*" * VISIBLE
    return MASK_RUN + compact[-VISIBLE:]


def _digits_in(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


_BASE58_FULL = re.compile(_BASE58)


def _looks_base58_address(text: str) -> bool:
    # Addresses mix digits and both cases; long words and identifiers do not.
    return (_BASE58_FULL.fullmatch(text) is not None and any(c.isdigit() for c in text)
            and any(c.isupper() for c in text) and any(c.islower() for c in text))


def _replace(match: re.Match) -> str:
    kind = match.lastgroup
    text = match.group(kind)
    if kind in ("iban", "grouped"):
        # An IBAN's BBAN is mostly digits ('ab12 with some text' is not an IBAN);
        # a base58 address may start like one.
        if _digits_in(text[4:]) >= 8 or _looks_base58_address(text):
            return mask(text)
        return text
    if kind == "base58" and not _looks_base58_address(text):
        return text
    return mask(text)


@functools.lru_cache(maxsize=4096)
def _mask_short(text: str) -> str:
    # Reason texts and log lines repeat: the same sentence is masked once.
    return _PATTERN.sub(_replace, text)


def _mask_patterns(text: str) -> str:
    return _mask_short(text) if len(text) <= 512 else _PATTERN.sub(_replace, text)


def mask_text(text: object, known: Iterable[object] = ()) -> str:
    """`text` with every destination-like value masked; `known` values are masked wherever they occur."""
    text = "" if text is None else str(text)
    if known:
        values = {str(v) for v in known if v is not None}
        for value in sorted(values, key=len, reverse=True):
            for form in dict.fromkeys((value, value.strip(), _SEPARATORS.sub("", value))):
                if len(form) > VISIBLE and form in text:
                    text = text.replace(form, mask(form))
    return _mask_patterns(text)


def mask_data(value: Any) -> Any:
    """mask_text applied to every string inside dicts, lists and tuples (keys too)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {mask_data(k) if isinstance(k, str) else k: mask_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_data(v) for v in value)
    return value


# -- logging --------------------------------------------------------------------------

_DONE = "_payouts_masked"


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask a log record in place: the formatted message, and an exception's text when it names a destination."""
    if getattr(record, _DONE, False):
        return record
    if isinstance(record.msg, dict) and not record.args:
        record.msg = mask_data(record.msg)   # a structlog event dict on its way to ProcessorFormatter
    else:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is, masked
            message = f"{record.msg} {record.args}" if record.args else str(record.msg)
        record.msg, record.args = mask_text(message), ()
    if record.exc_info and record.exc_info[0] is not None:
        rendered = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        masked = mask_text(rendered)
        if masked != rendered:
            # The exception goes into the message, masked; no formatter renders it again from exc_info.
            record.msg = f"{record.msg}\n{masked}"
            record.exc_info, record.exc_text = None, None
    elif record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)
    setattr(record, _DONE, True)
    return record


class MaskingFilter(logging.Filter):
    """A logging filter that masks destinations in each record it sees (and never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def structlog_processor(logger: Any, method_name: str, event_dict: dict) -> dict:
    """The structlog counterpart of MaskingFilter (Airflow's task logs go through structlog)."""
    exc_info = event_dict.get("exc_info")
    if exc_info:
        if exc_info is True:
            import sys

            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if isinstance(exc_info, tuple) and exc_info[0] is not None:
            rendered = "".join(traceback.format_exception(*exc_info)).rstrip()
            masked = mask_text(rendered)
            if masked != rendered:
                event_dict.pop("exc_info")
                event_dict["exception"] = masked
    return mask_data(event_dict)


_FILTER = MaskingFilter()


def _masking_factory(previous):
    def factory(*args, **kwargs):
        return mask_record(previous(*args, **kwargs))

    factory._payouts_previous = previous  # type: ignore[attr-defined]
    return factory


def install(logger_names: Iterable[str] = ("payouts",)) -> None:
    """Mask destinations in every log line this process writes. Idempotent; cheap to call at task start.

    - every LogRecord is masked when it is made (a record factory), so loggers and
      handlers configured later (Airflow configures its own) are covered too;
    - the filter sits on the named loggers and on the root logger's handlers;
    - structlog, when configured (Airflow's task logs), gets the masking processor
      just before its renderer.
    """
    current = logging.getLogRecordFactory()
    if not hasattr(current, "_payouts_previous"):
        logging.setLogRecordFactory(_masking_factory(current))
    targets = [logging.getLogger(name) for name in logger_names]
    for target in targets:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
    for handler in [h for t in [logging.getLogger(), *targets] for h in t.handlers]:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    _install_structlog()


def _install_structlog() -> None:
    try:
        import structlog
    except ImportError:
        return
    if not structlog.is_configured():
        return
    processors = structlog.get_config()["processors"]
    if structlog_processor in processors:
        return
    # In place: loggers already bound (and cached) share this very list.
    processors.insert(max(len(processors) - 1, 0), structlog_processor)


def uninstall() -> None:
    """Undo install() (for tests)."""
    current = logging.getLogRecordFactory()
    if hasattr(current, "_payouts_previous"):
        logging.setLogRecordFactory(current._payouts_previous)
    for logger in [logging.getLogger(), *(logging.getLogger(n) for n in logging.root.manager.loggerDict)]:
        if isinstance(logger, logging.Logger):
            if _FILTER in logger.filters:
                logger.removeFilter(_FILTER)
            for handler in logger.handlers:
                handler.removeFilter(_FILTER)
    try:
        import structlog

        processors = structlog.get_config()["processors"]
        while structlog_processor in processors:
            processors.remove(structlog_processor)
    except ImportError:
        pass
