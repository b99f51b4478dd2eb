"""Start and stop the sandbox bank in a subprocess, with fresh SSH keys (tests, `payouts run`).

    with start_bank(tmp_path / "bank", faults="partial_reject=0.5") as bank:
        os.environ["AIRFLOW_CONN_PAYOUTS_BANK"] = bank.connection_uri(debtor_accounts={...})
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from payouts import settings
from payouts_sandbox.process import SANDBOX_DIR, ChildProcess

# The sandbox bank's accounts of the platform, one per currency it pays in.
DEBTOR_ACCOUNTS = {
    "EUR": {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
    "GBP": {"iban": "GB29NWBK60161331926819", "bic": "NWBKGB2LXXX"},
    "USD": {"iban": "DE62370400440532013001", "bic": "COBADEFFXXX"},
    "*": {"iban": "DE35370400440532013002", "bic": "COBADEFFXXX"},   # every other currency, converted
}


def new_key_pair(folder: Path, name: str) -> tuple[Path, str]:
    """An ed25519 key pair: the private key file, and the public key in OpenSSH form."""
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    path = folder / name
    key.write_private_key(str(path))
    os.chmod(path, 0o600)
    public = key.export_public_key().decode().strip()
    (folder / f"{name}.pub").write_text(public + "\n")
    return path, public


class BankProcess(ChildProcess):
    def __init__(self, process: subprocess.Popen, root: Path, port: int, host_key: str, client_key: Path,
                 log_path: Path):
        self.process, self.root, self.port = process, root, port
        self.host_key, self.client_key, self.log_path = host_key, client_key, log_path

    def connection(self, **extra) -> dict:
        """An Airflow connection (JSON form) of this bank for the platform."""
        return {"conn_type": "sftp", "host": "127.0.0.1", "port": self.port, "login": "payouts",
                "extra": {"connector": "bank_h2h", "host_key": self.host_key,
                          "private_key": self.client_key.read_text(), "debtor_accounts": DEBTOR_ACCOUNTS,
                          "debtor_name": "Payouts platform", **extra}}

    def connection_json(self, **extra) -> str:
        return json.dumps(self.connection(**extra))



def start_bank(root: str | Path, *, faults: str | None = None, seed: int = 0, reports: str = "all",
               pain002_version: str = "001.001.10", late_s: float = 2.0, pickup_s: float = 0.0,
               inbox_listable: bool = True, pgp: dict | None = None, stall_at: str | None = None,
               ready_timeout: float = 30.0) -> BankProcess:
    """Run `python -m payouts_sandbox.bank.server` with new keys (kept in root/keys) and wait until it listens.

    `pgp`: {"home", "fingerprint", "peer"} for a bank that signs, encrypts and checks PGP.
    """
    root = Path(root).resolve()
    keys = root / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    host_key_path = keys / "bank_host_key"
    client_key_path = keys / "platform_key"
    if host_key_path.exists() and client_key_path.exists():
        host_public = (keys / "bank_host_key.pub").read_text().strip()
    else:
        _, host_public = new_key_pair(keys, "bank_host_key")
        new_key_pair(keys, "platform_key")
    ready = root / "ready.json"
    ready.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "payouts_sandbox.bank.server", "--root", str(root / "sftp"),
           "--host-key", str(host_key_path), "--authorized-keys", str(keys / "platform_key.pub"),
           "--seed", str(seed), "--reports", reports, "--pain002-version", pain002_version,
           "--late-s", str(late_s), "--pickup-s", str(pickup_s), "--ready-file", str(ready)]
    if faults:
        cmd += ["--faults", faults]
    if stall_at:
        cmd += ["--stall-at", stall_at]
    if not inbox_listable:
        cmd.append("--inbox-unlistable")
    if pgp:
        cmd += ["--pgp-home", str(pgp["home"]), "--pgp-fingerprint", pgp["fingerprint"], "--pgp-peer", pgp["peer"]]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(settings.PLUGINS_DIR), str(SANDBOX_DIR), env.get("PYTHONPATH")) if p)
    log_path = root / "bank.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + ready_timeout
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox bank exited with code {process.returncode}:\n{log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"the sandbox bank did not start in {ready_timeout}s")
        time.sleep(0.05)
    port = json.loads(ready.read_text())["port"]
    return BankProcess(process, root / "sftp", port, host_public, client_key_path, log_path)
