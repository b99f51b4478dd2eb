"""payouts.core.masking: destinations show only their last four characters in logs and output."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from payouts.core import masking
from payouts.core.masking import MaskingFilter, mask, mask_data, mask_text

PROJECT = Path(__file__).resolve().parents[3]

IBAN = "DE89370400440532013000"
IBAN_GROUPED = "DE89 3704 0044 0532 0130 00"
EVM = "0x52908400098527886E0F7030069857D2E4169EE7"
BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
BTC_LEGACY = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
TRON = "TNPeeaaFB7K9cmo4uQpcU32zGK8G8M7SLd"
SOLANA = "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"
ACCOUNT = "000123456789"

DESTINATIONS = [IBAN, "GB29NWBK60161331926819", "FR1420041010050500013M02606", "NL91ABNA0417164300",
                EVM, EVM.lower(), BECH32, BECH32.upper(), BTC_LEGACY, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
                TRON, SOLANA, ACCOUNT, "12345678", "012345678901234567"]


def _compact(value: str) -> str:
    return value.replace(" ", "")


def test_mask_keeps_only_the_last_four_characters_behind_a_fixed_run():
    assert mask(IBAN) == "************3000"
    assert mask(IBAN_GROUPED) == "************3000"          # separators dropped first
    assert mask(EVM) == "************9EE7"
    assert mask("12-34-56-78") == "************5678"
    # the same width whatever the length: the length of the value does not show either
    assert len(mask(SOLANA)) == len(mask(ACCOUNT)) == 16


@pytest.mark.parametrize("value", ["", "1", "abcd", " 12 3"])
def test_mask_hides_short_values_entirely(value):
    masked = mask(value)
    assert set(masked) <= {"*"} and (value.strip() == "" or masked == "****")


def test_mask_of_none_and_non_strings():
    assert mask(None) is None
    assert mask(123456789) == "************6789"


@pytest.mark.parametrize("value", DESTINATIONS)
def test_mask_text_finds_each_kind_of_destination_in_a_sentence(value):
    for template in ("{}", "IBAN {} fails the mod-97 check digits.", "wallet={}, network=x",
                     "('{}',)", "[{}]", "dest:{}", "{}\n"):
        text = template.format(value)
        masked = mask_text(text)
        assert value not in masked, (template, masked)
        assert masked == text.replace(value, "************" + _compact(value)[-4:])


def test_mask_text_finds_a_grouped_iban_in_either_case():
    for value in (IBAN_GROUPED, IBAN_GROUPED.lower()):
        masked = mask_text(f"iban {value}.")
        assert masked == "iban ************3000."


@pytest.mark.parametrize("text", [
    "item R000001-00000001:sepa_instant accepted",   # item ids and idempotency keys
    "run R000123 for DAG run scheduled__2026-01-01T06:00:00+00:00",
    "amount 12345678.90 EUR, 1.234567891 BTC",      # decimal amounts
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "uuid 2b5c3f1e-8a8d-4a8e-9d2e-1c3f5a7b9d0e",
    "ab12 with some text and more words here",    # looks like a spaced IBAN, is prose
    "ReconciliationPassTimingsSummaryForAnalysts",  # a long base58-looking word
    "counts {'ready': 1200, 'held': 3, 'rejected': 17}",
    "stamp 20260101T060000.123456",
])
def test_mask_text_leaves_ids_amounts_and_prose_alone(text):
    assert mask_text(text) == text


def test_mask_text_masks_known_values_that_match_no_pattern():
    garbled = "DE89-3704-0044-X"        # not IBAN-like any more, but it is this row's IBAN
    text = f"IBAN {garbled} does not have the length of a DE IBAN."
    assert garbled in mask_text(text)
    masked = mask_text(text, known=[garbled, None, "abc"])
    assert garbled not in masked and "************044X" in masked


def test_mask_data_walks_containers():
    event = {"event": f"paid {IBAN}", "exception": [{"exc_value": f"bad {EVM}", "frames": []}],
             "n": 3, "keys": (ACCOUNT,)}
    masked = mask_data(event)
    assert masked == {"event": "paid ************3000",
                      "exception": [{"exc_value": "bad ************9EE7", "frames": []}],
                      "n": 3, "keys": ("************6789",)}


def _capture(logger: logging.Logger) -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    return stream


def test_the_filter_masks_message_args_and_exceptions():
    logger = logging.getLogger("test_masking.filter")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addFilter(MaskingFilter())
    stream = _capture(logger)
    logger.info("paying %s to %s", "1.00 EUR", IBAN)
    logger.info({"wallet": EVM})
    try:
        raise ValueError(f"provider refused creditor {ACCOUNT}")
    except ValueError:
        logger.exception("submit failed for %s", SOLANA)
    logger.info("nothing to hide in R000001-00000001")
    out = stream.getvalue()
    for value in (IBAN, EVM, ACCOUNT, SOLANA):
        assert value not in out
    for tail in ("3000", "9EE7", "6789", "FLtV"):
        assert "************" + tail in out
    assert "Traceback" in out and "ValueError: provider refused creditor ************6789" in out
    assert "nothing to hide in R000001-00000001" in out


def test_install_covers_child_loggers_and_handlers_added_later():
    """A filter on 'payouts' alone would miss 'payouts.orchestration.tasks' (logger filters do not propagate)."""
    masking.install()
    try:
        child = logging.getLogger("payouts.some_module.deep")
        root_stream = io.StringIO()
        late = logging.StreamHandler(root_stream)          # added after install(), as Airflow does
        logging.getLogger().addHandler(late)
        previous_level = logging.getLogger().level
        logging.getLogger().setLevel(logging.INFO)
        try:
            child.info("destination %s", IBAN)
            logging.getLogger("some.library").warning("unrelated %s", BECH32)
        finally:
            logging.getLogger().removeHandler(late)
            logging.getLogger().setLevel(previous_level)
        out = root_stream.getvalue()
        assert IBAN not in out and BECH32 not in out
        assert "destination ************3000" in out and "unrelated ************5mdq" in out
        masking.install()                                 # idempotent: one factory, one filter
        assert logging.getLogger("payouts").filters.count(masking._FILTER) == 1
    finally:
        masking.uninstall()
    assert not hasattr(logging.getLogRecordFactory(), "_payouts_previous")


def test_without_install_nothing_is_masked():
    """The control for the test above: the masking is what hides the value."""
    stream = io.StringIO()
    logger = logging.getLogger("test_masking.control")
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(stream))
    logger.warning("destination %s", IBAN)
    assert IBAN in stream.getvalue()


def test_provider_rejection_message_masks_the_echoed_request():
    from payouts.providers.contract import ProviderRequestRejected

    detail = [{"loc": ["body", "payments", 0, "creditor", "iban"], "msg": "too long",
               "input": {"iban": IBAN, "wallet_address": EVM}}]
    exc = ProviderRequestRejected(422, detail)
    assert IBAN not in str(exc) and EVM not in str(exc)
    assert "************3000" in str(exc) and exc.detail == detail   # the detail itself stays for code


def test_tasks_installs_the_masking_when_a_task_imports_it():
    """The hook the DAG tasks rely on: importing payouts.orchestration.tasks masks the process's logs."""
    code = textwrap.dedent(f"""
        import logging, sys
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(message)s")
        import payouts.orchestration.tasks
        logging.getLogger("payouts.orchestration.tasks").info("paying {IBAN}")
        logging.getLogger("airflow.task").info("wallet {TRON}")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=PROJECT, env={"PYTHONPATH": str(PROJECT / "plugins"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert IBAN not in result.stdout and TRON not in result.stdout
    assert "payouts.orchestration.tasks paying ************3000" in result.stdout
    assert "airflow.task wallet ************7SLd" in result.stdout


def test_airflow_task_logging_is_masked_structlog_and_stdlib():
    """Airflow's own task-log setup (structlog, JSON to the supervisor), then a task that logs and fails."""
    code = textwrap.dedent(f"""
        import logging, sys, io
        import structlog
        from airflow.sdk._shared.logging.structlog import configure_logging
        out = io.BytesIO()
        configure_logging(json_output=True, output=out, log_level="INFO")
        task_log = structlog.get_logger("task")          # bound before the masking, as Airflow's are
        task_log.info("before the task", destination="{EVM}")
        import payouts.orchestration.tasks                              # what every task does first
        task_log.info("task running", destination="{EVM}")
        logging.getLogger("payouts.orchestration.tasks").info("paying %s", "{IBAN}")
        try:
            raise RuntimeError("provider refused {ACCOUNT}")
        except RuntimeError:
            task_log.exception("Task failed with exception")
        sys.stdout.write(out.getvalue().decode())
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=PROJECT, env={"PYTHONPATH": str(PROJECT / "plugins"), "PATH": "/usr/bin:/bin",
                                              "AIRFLOW_HOME": str(PROJECT / ".data" / "test" / "airflow")})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    before = [line for line in lines if "before the task" in line]
    after = [line for line in lines if "before the task" not in line]
    assert EVM in before[0]                              # the control: unmasked before the hook
    text = "\n".join(after)
    assert "task running" in text and "paying" in text and "Task failed with exception" in text
    for value in (EVM, IBAN, ACCOUNT):
        assert value not in text
    for tail in ("9EE7", "3000", "6789"):
        assert "************" + tail in text


def test_structlog_through_stdlib_keeps_its_event_dict():
    """structlog's stdlib integration hands the event dict over as record.msg: masked, still a dict."""
    import structlog

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=structlog.processors.JSONRenderer()))
    std = logging.getLogger("test_masking.structlog_stdlib")
    std.propagate = False
    std.setLevel(logging.INFO)
    std.addHandler(handler)
    std.addFilter(MaskingFilter())
    log = structlog.wrap_logger(std, processors=[structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
                                wrapper_class=structlog.stdlib.BoundLogger)
    log.info("paid", iban=IBAN)
    assert IBAN not in stream.getvalue()
    assert json.loads(stream.getvalue()) == {"event": "paid", "iban": "************3000"}
