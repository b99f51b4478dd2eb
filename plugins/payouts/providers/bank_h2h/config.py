"""A bank host-to-host connection: an Airflow connection of type `sftp` whose extra names
`connector: bank_h2h`.

    host, port, login        the bank's SFTP server and our user there
    password                 a password, when the bank does not use keys
    extra.private_key        our SSH private key (OpenSSH or PEM text), or
    extra.private_key_file   a path to it
    extra.host_key           the bank's host key, pinned ("ssh-ed25519 AAAA..."): required
    extra.inbox, outbox, archive      folders (default /inbox, /outbox, /archive)
    extra.file_name          the pain.001 file name, with {msg_id} (default "{msg_id}.xml")
    extra.pain001_version    "001.001.09" (default) or "001.001.03"
    extra.debtor_name        the account holder's name
    extra.debtor_accounts    currency -> {"iban": ..., "bic": ...} (or just the IBAN); "*": the account
                             that pays every other currency (the bank converts)
    extra.max_per_file       most transactions per file (default 10000)
    extra.status_wait_s      how long to wait for a pain.002 (default 14400: four hours)
    extra.reports            "all" (default) or "rejections" (the bank reports only rejections)
    extra.rejects_duplicate_msg_id   the bank refuses a second file with a MsgId it has seen
    extra.upload_attempts    tries per file within one submit, each on a new connection (default 3)
    extra.pgp                {"home", "private_key", "passphrase", "fingerprint",
                              "bank_public_key", "bank_fingerprint"} (optional)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payouts.iso20022.pain001 import Debtor
from payouts.providers.contract import ConnectorConfigError

DEFAULT_FILE_NAME = "{msg_id}.xml"
VERSIONS = ("001.001.09", "001.001.03")


@dataclass(frozen=True)
class BankConfig:
    conn_id: str
    host: str
    port: int
    login: str
    host_key: str
    password: str | None = None
    private_key: str | None = None
    inbox: str = "/inbox"
    outbox: str = "/outbox"
    archive: str = "/archive"
    file_name: str = DEFAULT_FILE_NAME
    pain001_version: str = "001.001.09"
    debtor_accounts: dict[str, Debtor] = field(default_factory=dict)  # currency -> the account we pay from
    max_per_file: int = 10_000
    status_wait_s: float = 14_400.0
    reports: str = "all"
    rejects_duplicate_msg_id: bool = False
    pgp: dict[str, str] | None = None
    connect_timeout_s: float = 15.0
    upload_attempts: int = 3

    @property
    def our_ibans(self) -> frozenset[str]:
        return frozenset(a.iban for a in self.debtor_accounts.values())

    def account_for(self, currency: str) -> Debtor | None:
        return self.debtor_accounts.get(currency) or self.debtor_accounts.get("*")

    def name_for(self, msg_id: str) -> str:
        return self.file_name.format(msg_id=msg_id) + (".pgp" if self.pgp else "")


def _error(conn_id: str, text: str) -> ConnectorConfigError:
    return ConnectorConfigError(f"connection {conn_id!r} (bank_h2h): {text}")


def from_connection(conn_id: str, connection: Any) -> BankConfig:
    """The connection's fields, checked; ConnectorConfigError naming the connection and the field."""
    extra = connection.extra_dejson if connection.extra else {}
    host = (connection.host or "").strip()
    if not host:
        raise _error(conn_id, "no host: the bank's SFTP server is missing")
    if not connection.login:
        raise _error(conn_id, "no login: our user at the bank is missing")
    host_key = (extra.get("host_key") or "").strip()
    if not host_key or len(host_key.split()) < 2:
        raise _error(conn_id, "extra host_key must pin the bank's host key ('ssh-ed25519 AAAA...')")
    private_key = extra.get("private_key")
    if not private_key and extra.get("private_key_file"):
        path = Path(extra["private_key_file"]).expanduser()
        try:
            private_key = path.read_text()
        except OSError as exc:
            raise _error(conn_id, f"extra private_key_file {str(path)!r} cannot be read: {exc.strerror}") from None
    if not private_key and not connection.password:
        raise _error(conn_id, "neither a private key (extra private_key or private_key_file) nor a password")
    file_name = extra.get("file_name", DEFAULT_FILE_NAME)
    if "{msg_id}" not in file_name or "/" in file_name or file_name.startswith("."):
        raise _error(conn_id, f"extra file_name {file_name!r} must contain {{msg_id}}, no '/', no leading '.'")
    version = extra.get("pain001_version", "001.001.09")
    if version not in VERSIONS:
        raise _error(conn_id, f"extra pain001_version {version!r} is not one of {', '.join(VERSIONS)}")
    debtor_name = extra.get("debtor_name", "Payouts platform")
    accounts: dict[str, Debtor] = {}
    for currency, value in (extra.get("debtor_accounts") or {}).items():
        if isinstance(value, str):
            value = {"iban": value}
        if not isinstance(value, dict) or not value.get("iban"):
            raise _error(conn_id, f"extra debtor_accounts[{currency!r}] needs an iban")
        accounts["*" if currency == "*" else str(currency).upper()] = Debtor(
            debtor_name, "".join(value["iban"].split()).upper(), value.get("bic"))
    if not accounts:
        raise _error(conn_id, "extra debtor_accounts names no account (currency -> IBAN)")
    reports = extra.get("reports", "all")
    if reports not in ("all", "rejections"):
        raise _error(conn_id, f"extra reports {reports!r} must be 'all' or 'rejections'")
    try:
        max_per_file = int(extra.get("max_per_file", 10_000))
        wait = float(extra.get("status_wait_s", 14_400))
        timeout = float(extra.get("connect_timeout_s", 15))
        upload_attempts = int(extra.get("upload_attempts", 3))
        port = int(connection.port or 22)
    except (TypeError, ValueError):
        raise _error(conn_id, "port, max_per_file, status_wait_s, connect_timeout_s and upload_attempts must be"
                              " numbers") from None
    if max_per_file < 1 or wait <= 0 or timeout <= 0 or upload_attempts < 1:
        raise _error(conn_id, "max_per_file, status_wait_s, connect_timeout_s and upload_attempts must be positive")
    pgp = extra.get("pgp")
    if pgp is not None:
        missing = [k for k in ("private_key", "fingerprint", "bank_public_key", "bank_fingerprint") if not pgp.get(k)]
        if missing:
            raise _error(conn_id, f"extra pgp lacks {', '.join(missing)}")
    for folder in ("inbox", "outbox", "archive"):
        if not str(extra.get(folder, "/" + folder)).startswith("/"):
            raise _error(conn_id, f"extra {folder} must be an absolute path on the bank's server")
    return BankConfig(
        conn_id=conn_id, host=host, port=port, login=connection.login, host_key=host_key,
        password=connection.password or None, private_key=private_key,
        inbox=extra.get("inbox", "/inbox"), outbox=extra.get("outbox", "/outbox"),
        archive=extra.get("archive", "/archive"), file_name=file_name, pain001_version=version,
        debtor_accounts=accounts,
        max_per_file=max_per_file, status_wait_s=wait, reports=reports,
        rejects_duplicate_msg_id=bool(extra.get("rejects_duplicate_msg_id", False)),
        pgp=dict(pgp) if pgp else None, connect_timeout_s=timeout, upload_attempts=upload_attempts,
    )
