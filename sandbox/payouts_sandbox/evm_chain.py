"""A local EVM chain for tests, `payouts run --provider evm` and the benchmark.

Foundry's anvil from the npm registry (evm/package-lock.json; its binary is in
the platform package @foundry-rs/anvil-<os>-<arch>, started directly so that
stopping it leaves nothing behind), on the loopback address, producing blocks.
Tokens are deployed from bytecode compiled at set-up time (evm/compile.js):
a USDC/USDT-like StableToken with a blacklist, and OpenZeppelin's
ERC20PresetFixedSupply (18 decimals).

    with start_anvil(tmp_path) as node:
        chain = deploy_stablecoins(node.url, HOT_WALLET_KEY)
        os.environ["AIRFLOW_CONN_PAYOUTS_EVM_ETHEREUM"] = chain.connection_json()
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from payouts_sandbox.process import ChildProcess, free_port

EVM_DIR = Path(__file__).resolve().parents[2] / "evm"
BUILD_DIR = EVM_DIR / "build"

# anvil's well-known development accounts (mnemonic "test test ... junk"): public test keys.
DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HOT_WALLET_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_OS = {"linux": "linux", "darwin": "darwin", "win32": "win32"}


class ChainSetupError(RuntimeError):
    """The local chain cannot be started or set up (anvil missing, a deploy that failed)."""


def anvil_binary() -> Path:
    os_name = _OS.get(sys.platform, sys.platform)
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    binary = EVM_DIR / "node_modules" / "@foundry-rs" / f"anvil-{os_name}-{arch}" / "bin" / "anvil"
    if not binary.exists():
        raise ChainSetupError(f"anvil is not installed at {binary}: run `make .venv/.installed`"
                              " (npm ci --prefix evm)")
    return binary


def artifact(name: str) -> dict:
    path = BUILD_DIR / f"{name}.json"
    if not path.exists():
        raise ChainSetupError(f"{path} is missing: run `make .venv/.installed` (node evm/compile.js)")
    return json.loads(path.read_text())


class AnvilProcess(ChildProcess):
    """A running anvil; `.url`, `.stop()`, `.restart()` (same port, same --state file)."""

    def __init__(self, workdir: Path, port: int, block_time: float, chain_id: int, state_file: Path | None):
        self.workdir, self.port, self.block_time, self.chain_id = workdir, port, block_time, chain_id
        self.state_file = state_file
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"anvil-{port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> AnvilProcess:
        argv = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port),
                "--chain-id", str(self.chain_id), "--accounts", "3", "--balance", "1000"]
        if self.block_time:
            argv += ["--block-time", str(self.block_time)]
        if self.state_file is not None:
            argv += ["--state", str(self.state_file)]
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ChainSetupError(f"anvil exited with {self.process.returncode}: {self.log()[-2000:]}")
            try:
                r = httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                               timeout=1.0)
                if r.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ChainSetupError(f"anvil did not answer on {self.url} within {timeout:.0f}s")

    def rpc(self, method: str, *params):
        r = httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                       timeout=30.0)
        body = r.json()
        if "error" in body:
            raise ChainSetupError(f"{method}: {body['error']}")
        return body["result"]

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (anvil writes its --state file on the way out), then SIGKILL if it lingers."""
        super().stop(timeout)

    def restart(self) -> AnvilProcess:
        self.stop()
        return self.start()



def start_anvil(workdir: Path, *, block_time: float = 1, chain_id: int = 1, state_file: Path | None = None,
                port: int | None = None) -> AnvilProcess:
    return AnvilProcess(Path(workdir), port or free_port(), block_time, chain_id, state_file).start()


@dataclass
class LocalChain:
    """Tokens deployed on a local node and the hot wallet funded with them."""

    url: str
    chain_id: int
    hot_wallet_key: str
    tokens: dict[str, dict] = field(default_factory=dict)  # asset -> {"address", "decimals"}
    confirmations: int = 2

    def connection(self, **extra) -> dict:
        return {"conn_type": "evm", "host": self.url, "password": self.hot_wallet_key,
                "extra": {"chain_id": self.chain_id, "tokens": json.loads(json.dumps(self.tokens)),
                          "confirmations": self.confirmations,
                          **extra}}

    def connection_json(self, **extra) -> str:
        return json.dumps(self.connection(**extra))


def _web3(url: str):
    from web3 import Web3

    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))


def _send(w3, account, tx: dict) -> dict:
    tx = {"chainId": w3.eth.chain_id, "nonce": w3.eth.get_transaction_count(account.address, "pending"),
          "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
          "maxPriorityFeePerGas": 10**9, "gas": 3_000_000, **tx}
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), timeout=60)
    if receipt["status"] != 1:
        raise ChainSetupError(f"set-up transaction reverted: {receipt}")
    return receipt


def deploy_contract(url: str, name: str, args: list, deployer_key: str = DEPLOYER_KEY) -> str:
    """Deploy a compiled contract of evm/build; its address."""
    from eth_account import Account

    w3 = _web3(url)
    spec = artifact(name)
    contract = w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
    data = contract.constructor(*args).build_transaction({"from": Account.from_key(deployer_key).address,
                                                         "gas": 3_000_000})["data"]
    receipt = _send(w3, Account.from_key(deployer_key), {"data": data, "value": 0})
    return receipt["contractAddress"]


def call_owner(url: str, token: str, function: str, args: list, deployer_key: str = DEPLOYER_KEY) -> dict:
    """Call an owner-only function of a StableToken (mint, blacklist)."""
    from eth_account import Account

    w3 = _web3(url)
    contract = w3.eth.contract(address=token, abi=artifact("StableToken")["abi"])
    data = contract.encode_abi(function, args=args)
    return _send(w3, Account.from_key(deployer_key), {"to": token, "data": data, "value": 0})


def deploy_stablecoins(url: str, hot_wallet_key: str = HOT_WALLET_KEY, *, supply_major: int = 10_000_000,
                       confirmations: int = 2, usdt_decimals: int = 6) -> LocalChain:
    """USDC (6 decimals) and USDT (6, or 18 with OpenZeppelin's preset) minted to the hot wallet."""
    from eth_account import Account

    w3 = _web3(url)
    hot = Account.from_key(hot_wallet_key).address
    tokens = {"USDC": {"address": deploy_contract(url, "StableToken",
                                                  ["USD Coin", "USDC", 6, supply_major * 10**6, hot]),
                       "decimals": 6}}
    if usdt_decimals == 18:
        address = deploy_contract(url, "ERC20PresetFixedSupply", ["Tether USD", "USDT", supply_major * 10**18, hot])
    else:
        address = deploy_contract(url, "StableToken", ["Tether USD", "USDT", usdt_decimals,
                                                       supply_major * 10**usdt_decimals, hot])
    tokens["USDT"] = {"address": address, "decimals": usdt_decimals}
    return LocalChain(url=url, chain_id=w3.eth.chain_id, hot_wallet_key=hot_wallet_key, tokens=tokens,
                      confirmations=confirmations)


EVM_CONN_ID = "payouts_evm_ethereum"


def for_payouts_run(stack, args, note, steps: list[str]):
    """`payouts run --provider evm`: Ethereum's crypto items are paid on a chain.

    Unless the connection payouts_evm_ethereum is set, one anvil is started for
    the run with its chain kept in the data folder (`--state`), so the next run
    continues it; USDC- and USDT-like tokens are deployed there once and minted
    to the hot wallet. The crypto rail goes to that connection; the networks it
    does not serve stay on the sandbox (its extra `other_networks`). The payments
    are answered pending, so the steps gain poll_payments after payout_run.
    """
    import os

    from payouts import settings

    env_var = settings.conn_env_var(EVM_CONN_ID)
    if not os.environ.get(env_var):
        folder = settings.data_dir() / "evm"
        folder.mkdir(parents=True, exist_ok=True)
        described = folder / "chain.json"
        state = folder / "anvil-state.json"
        node = stack.enter_context(start_anvil(folder, block_time=1, state_file=state))
        if described.exists() and state.exists():
            chain = LocalChain(**{**json.loads(described.read_text()), "url": node.url})
        else:
            chain = deploy_stablecoins(node.url)
            described.write_text(json.dumps({k: v for k, v in chain.__dict__.items() if k != "url"}))
        # The other networks stay on the sandbox, which pays the other rails too (started after this).
        os.environ[env_var] = chain.connection_json(other_networks=settings.SANDBOX_CONN_ID)
        note(f"local chain (anvil) at {node.url}, chain id {chain.chain_id}, state in {state}"
             f" (connection {EVM_CONN_ID})")
    spec = os.environ.get("PAYOUTS_RAIL_PROVIDERS", "")
    if not any(part.split("=")[0].strip() == "crypto" for part in spec.split(",")):
        os.environ["PAYOUTS_RAIL_PROVIDERS"] = ",".join(p for p in (spec, f"crypto={EVM_CONN_ID}") if p)
    out = list(steps)
    # Payments wait for their confirmations: polled after the run, and again after the clock.
    out.insert(out.index("payout_run") + 1, "poll_payments")
    clock = next((i for i, s in enumerate(out) if s.startswith("clock:")), None)
    if clock is not None:
        out.insert(clock + 1, "poll_payments")
    from payouts_sandbox.run_provider import RunProvider

    return RunProvider(steps=out)
