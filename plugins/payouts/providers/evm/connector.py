"""The evm connector: ERC-20 transfers from a hot wallet, signed locally, one nonce at a time.

submit: checks the node's chain id and the tokens' decimals before anything is
signed, allocates nonces in the warehouse per (chain, wallet), signs, stores
the raw transaction and its hash (committed), then broadcasts and answers
`pending`. A payment that already has a stored transaction is never signed
again: its stored bytes are broadcast again. payment_status (the poll) reads
the receipts of every hash the payment has: accepted after the connection's
confirmations when the token's Transfer log shows the payment; a revert is a
rejection with its reason (a blacklist revert blocks the destination); the gas
paid is posted in the native coin. Unmined past `stuck_after_blocks`, the
transaction is replaced at the same nonce with both fee caps raised.
Statements are the token's Transfer logs from the hot wallet (statements.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

from payouts.core import ledger, money
from payouts.providers.contract import (
    Balance, Connector, ConnectorConfigError, Payment, PaymentResult, ProviderError, StatementPage,
)
from payouts.providers.evm import store
from payouts.providers.evm.config import EvmSettings, Token, settings_from_connection
from payouts.providers.evm.signer import Signer, local_signer
from payouts.providers.registry import register

log = logging.getLogger(__name__)

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
ERC20_ABI = [
    {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}], "outputs": []},
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "account", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "decimals", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
]
# Revert reasons of the token contracts, by what they mean for the payment.
_BLACKLIST_WORDS = ("blacklist", "frozen", "blocked")
# Raw transactions per JSON-RPC batch request when broadcasting.
BROADCAST_BATCH = 200
_FUNDS_WORDS = ("exceeds balance", "insufficient balance")


def _topic_address(address: str) -> str:
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


def _hex(value) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _normalise_receipt(raw: dict) -> dict:
    """A JSON-RPC receipt with its numbers as ints, as web3's formatters give them."""
    out = dict(raw)
    for name in ("status", "gasUsed", "effectiveGasPrice", "blockNumber"):
        if isinstance(out.get(name), str):
            out[name] = int(out[name], 16)
    return out


def _payable_address(address: str | None) -> str | None:
    """The checksummed address to pay, or None: not an address, a broken EIP-55 checksum, or (unless
    PAYOUTS_EVM_LOWERCASE=accept) one case only, which carries no checksum at all."""
    from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

    from payouts import settings

    if not address or not is_hex_address(address):
        return None
    if is_checksum_address(address):  # a valid checksum may be all one case by chance
        return address
    body = address[2:]
    if body == body.lower() or body == body.upper():
        return to_checksum_address(address) if settings.EVM_LOWERCASE_POLICY == "accept" else None
    return None


class ChainMismatch(ConnectorConfigError):
    """The node, a token or the key is not what the connection says: nothing may be signed."""


@register("evm", capabilities={"payment_status", "statements", "balances"})
class EvmConnector(Connector):
    def __init__(self, conn_id: str, rails: tuple[str, ...], settings: EvmSettings, signer: Signer):
        super().__init__(conn_id, rails)
        self.settings = settings
        self.signer = signer
        self.wallet = signer.address
        self._w3 = None
        self._db = None
        self._checked = False
        self._lock = threading.Lock()  # one broadcaster per wallet in this process (the pool: across them)
        self._delegate: Connector | None = None
        self._receipts: dict[str, dict | None] | None = None  # the poll's prefetch (_prefetch)
        self._txs: dict[str, list[store.StoredTx]] = {}
        self._latest = 0
        self.reorged_from: int | None = None  # the lowest block a reorganisation took away (reorg.py)

    @classmethod
    def from_connection(cls, conn_id: str, connection: Any, rails: tuple[str, ...] = ()) -> EvmConnector:
        settings = settings_from_connection(conn_id, connection)
        signer = local_signer(conn_id, connection.password)
        if settings.wallet and signer.address != settings.wallet:
            raise ConnectorConfigError(f"connection {conn_id!r}: its key signs for {signer.address}, not for the hot"
                                       f" wallet {settings.wallet} named in extra 'wallet'")
        return cls(conn_id, rails, settings, signer)

    # -- clients -------------------------------------------------------------------------

    @property
    def w3(self):
        if self._w3 is None:
            from web3 import Web3

            self._w3 = Web3(Web3.HTTPProvider(self.settings.rpc_url, request_kwargs={"timeout": 30}))
        return self._w3

    @property
    def db(self):
        if self._db is None or self._db.closed:
            from payouts.warehouse import connect

            self._db = connect(autocommit=True)
        return self._db

    def delegate(self) -> Connector | None:
        """The connection that pays the networks this one does not (extra `other_networks`)."""
        if self.settings.other_networks and self._delegate is None:
            from payouts.providers import registry

            self._delegate = registry.connector(self.settings.other_networks, self.rails)
        return self._delegate

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._delegate is not None:
            self._delegate.close()
        self._w3 = None

    def _rpc(self, what: str, call):
        from web3.exceptions import TransactionNotFound

        try:
            return call()
        except (ProviderError, ConnectorConfigError, TransactionNotFound):
            raise
        except Exception as exc:  # requests' connection errors, the node's RPC errors
            raise ProviderError(f"connection {self.conn_id!r}: {what} failed at {self.settings.rpc_url}:"
                                f" {type(exc).__name__}: {exc}") from None

    def token_contract(self, token: Token):
        return self.w3.eth.contract(address=token.address, abi=ERC20_ABI)

    # -- checks before anything is signed -------------------------------------------------

    def preflight(self) -> None:
        """The node's chain id is the connection's, every token is a contract answering its decimals."""
        if self._checked:
            return
        s = self.settings
        chain_id = self._rpc("eth_chainId", lambda: self.w3.eth.chain_id)
        if chain_id != s.chain_id:
            raise ChainMismatch(f"connection {self.conn_id!r}: the node at {s.rpc_url} is chain {chain_id}, the"
                                f" connection says chain {s.chain_id}; nothing is signed")
        for token in s.tokens.values():
            code = self._rpc("eth_getCode", lambda: self.w3.eth.get_code(token.address))
            if not code:
                raise ChainMismatch(f"connection {self.conn_id!r}: token {token.asset} at {token.address} is not a"
                                    f" contract on chain {chain_id}; nothing is signed")
            try:
                decimals = self.token_contract(token).functions.decimals().call()
            except Exception as exc:  # noqa: BLE001 - any failure means: not the token we were told
                raise ChainMismatch(f"connection {self.conn_id!r}: token {token.asset} at {token.address} does not"
                                    f" answer decimals() ({type(exc).__name__}); nothing is signed") from None
            if decimals != token.decimals:
                raise ChainMismatch(f"connection {self.conn_id!r}: token {token.asset} at {token.address} has"
                                    f" {decimals} decimals, the connection says {token.decimals}; nothing is signed")
        self._checked = True

    # -- balances ------------------------------------------------------------------------

    def native_balance_wei(self) -> int:
        return int(self._rpc("eth_getBalance", lambda: self.w3.eth.get_balance(self.wallet)))

    def token_balance(self, token: Token) -> int:
        """The hot wallet's balance of a token in the asset's minor units (rounded down)."""
        raw = int(self._rpc("balanceOf", lambda: self.token_contract(token).functions.balanceOf(self.wallet).call()))
        shift = token.decimals - money.exponent(token.asset)
        return raw // 10**shift if shift >= 0 else raw * 10**-shift

    def _fees(self) -> tuple[int, int]:
        """(max fee per gas, max priority fee per gas): twice the base fee plus the tip."""
        tip = int(self._rpc("eth_maxPriorityFeePerGas", lambda: self.w3.eth.max_priority_fee))
        base = int(self._rpc("eth_getBlockByNumber", lambda: self.w3.eth.get_block("latest")["baseFeePerGas"]))
        return 2 * base + tip, tip

    def gas_shortfall(self, transactions: int) -> str | None:
        """Why the wallet cannot pay gas for `transactions` transfers now, or None."""
        max_fee, _ = self._fees()
        needed = transactions * self.settings.gas_limit * max_fee
        have = self.native_balance_wei()
        if have < needed:
            return (f"{self.settings.native} for gas: {money.format_amount(needed, self.settings.native)} needed for"
                    f" {transactions} transfers, the hot wallet {self.wallet} has"
                    f" {money.format_amount(have, self.settings.native)}")
        return None

    def funding_shortfall(self, rail: str, payments: list[tuple[str, int, str | None]]) -> str | None:
        """Why a batch of `payments` (asset, minor units, network) is not paid now, or None.

        Asked before anything is signed. The hot wallet's cap first: a batch that needs
        more of an asset than the wallet may ever hold cannot be funded within it. Then
        gas: the wallet's native coin must pay for every transfer of the batch at this
        block's fees (the token balance is available_balance's to judge).
        """
        self.preflight()
        mine: dict[str, int] = {}
        transfers = 0
        for asset, amount, network in payments:
            if asset in self.settings.tokens and (network or "").lower() == self.settings.network:
                mine[asset] = mine.get(asset, 0) + int(amount)
                transfers += 1
        if not mine:
            return None
        for asset, amount in sorted(mine.items()):
            cap = self.settings.hot_wallet_cap.get(asset)
            if cap is not None and amount > cap:
                return (f"{rail} {asset}: batch needs {money.format_amount(amount, asset)}, more than the hot"
                        f" wallet cap {money.format_amount(cap, asset)} of {self.conn_id}; raise hot_wallet_cap"
                        f" or pay the items in smaller batches")
        shortfall = self.gas_shortfall(transfers)
        return f"{rail} gas: {shortfall}" if shortfall else None

    def alerts(self, unmined: list[store.StoredTx] = ()) -> list[str]:
        """Treasury's alerts on the hot wallet, net of `unmined` (signed, not mined yet).

        Below `low_balance_alert` (a token or the native coin), above `hot_wallet_cap`
        (sweep the excess to cold storage). The gas of unmined transactions counts at
        their fee caps (the most they can cost). The check passes none: what the chain shows.
        """
        s = self.settings
        have = {}
        for asset, token in s.tokens.items():
            if asset in s.low_balance_alert or asset in s.hot_wallet_cap:
                in_flight = sum(t.token_amount or 0 for t in unmined if t.purpose == "payment" and t.asset == asset)
                have[asset] = self.token_balance(token) - token.to_minor(in_flight)
        if s.native in s.low_balance_alert:
            have[s.native] = self.native_balance_wei() - sum(t.gas_limit * t.max_fee_per_gas for t in unmined)
        out = []
        for asset, floor in s.low_balance_alert.items():
            if asset in have and have[asset] < floor:
                out.append(f"{asset} balance {money.format_amount(have[asset], asset)} is below the alert level"
                           f" {money.format_amount(floor, asset)} (wallet {self.wallet}): top it up")
        for asset, cap in s.hot_wallet_cap.items():
            if asset in have and have[asset] > cap:
                out.append(f"{asset} balance {money.format_amount(have[asset], asset)} is above the hot wallet cap"
                           f" {money.format_amount(cap, asset)} (wallet {self.wallet}): sweep the excess to cold"
                           f" storage")
        return out

    def balances(self) -> list[Balance]:
        self.preflight()
        rail = self.rails[0] if self.rails else "crypto"
        out = [Balance(rail, asset, self.token_balance(token)) for asset, token in self.settings.tokens.items()]
        out.append(Balance(rail, self.settings.native, self.native_balance_wei()))
        return out

    def available_balance(self, rail: str, currency: str) -> int:
        """What the hot wallet can pay in `currency` now: 0 when it cannot pay gas (the rail pauses).

        Checks the chain first (preflight): a wrong chain or token stops here, before any signing.
        """
        self.preflight()
        token = self.settings.tokens.get(currency)
        delegated = 0
        if self.delegate() is not None and self.delegate().supports("balances"):
            delegated = self.delegate().available_balance(rail, currency)
        if token is None:
            return delegated
        shortfall = self.gas_shortfall(1)
        if shortfall:
            log.warning("connection %s cannot pay: %s", self.conn_id, shortfall)
            return 0
        # Transfers signed and not mined yet are spent already: balanceOf does not show them.
        with self._lock:
            in_flight = sum(t.token_amount or 0 for t in store.unmined(self.db, self.conn_id)
                            if t.purpose == "payment" and t.asset == currency)
        return max(0, self.token_balance(token) - token.to_minor(in_flight)) + delegated

    def health(self) -> dict[str, Any]:
        self.preflight()
        latest = self._rpc("eth_blockNumber", lambda: self.w3.eth.block_number)
        balances = {b.currency: money.format_amount(b.available_minor, b.currency) for b in self.balances()}
        alerts = self.alerts()
        return {"status": "ok", "network": self.settings.network, "chain_id": self.settings.chain_id,
                "latest_block": latest, "wallet": self.wallet, "balances": balances, "alerts": alerts}

    # -- payments ------------------------------------------------------------------------

    async def submit(self, rail: str, payments: list[Payment]) -> list[PaymentResult]:
        mine = [p for p in payments if (p.creditor.network or "").lower() == self.settings.network]
        others = [p for p in payments if (p.creditor.network or "").lower() != self.settings.network]
        answers: dict[str, PaymentResult] = {}
        if others:
            if self.delegate() is not None:
                async with self.delegate().session():
                    for result in await self.delegate().submit(rail, others):
                        answers[result.idempotency_key] = result
            else:
                for p in others:
                    answers[p.idempotency_key] = PaymentResult(p.idempotency_key, p.end_to_end_id, "rejected", "MS03")
        if mine:
            for result in await asyncio.to_thread(self._submit_on_chain, mine):
                answers[result.idempotency_key] = result
        return [answers[p.idempotency_key] for p in payments]

    def _submit_on_chain(self, payments: list[Payment]) -> list[PaymentResult]:
        with self._lock, self._wallet_lock():
            self.preflight()
            s = self.settings
            known = store.transactions_of(self.db, self.conn_id, [p.idempotency_key for p in payments])
            results: dict[str, PaymentResult] = {}
            requests = []
            for p in payments:
                if p.idempotency_key in known:
                    continue  # signed before: its stored bytes go out again below
                token = s.tokens.get(p.currency)
                if token is None:
                    results[p.idempotency_key] = PaymentResult(p.idempotency_key, p.end_to_end_id, "rejected", "MS03")
                    continue
                to = _payable_address(p.creditor.wallet_address)
                if to is None:  # the checks hold these before approval; never signed if one slips through
                    results[p.idempotency_key] = PaymentResult(p.idempotency_key, p.end_to_end_id, "rejected", "AC03")
                    continue
                try:
                    amount = token.to_token_amount(p.amount_minor)
                except money.AmountError:
                    results[p.idempotency_key] = PaymentResult(p.idempotency_key, p.end_to_end_id, "rejected", "AM12")
                    continue
                requests.append({"payment": p, "token": token, "to": to, "amount": amount})
            to_send: list[store.StoredTx] = [txs[-1] for txs in known.values()]
            if requests:
                max_fee, tip = self._fees()
                node_nonce = int(self._rpc("eth_getTransactionCount",
                                           lambda: self.w3.eth.get_transaction_count(self.wallet, "pending")))
                signed_block = int(self._rpc("eth_blockNumber", lambda: self.w3.eth.block_number))

                def sign(request: dict, nonce: int):
                    token, p = request["token"], request["payment"]
                    data = self.token_contract(token).encode_abi("transfer", args=[request["to"], request["amount"]])
                    tx = {"type": 2, "chainId": s.chain_id, "nonce": nonce, "to": token.address, "value": 0,
                          "data": data, "gas": s.gas_limit, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
                    signed = self.signer.sign(tx)
                    return signed.tx_hash, signed.raw, {
                        "purpose": "payment", "idempotency_key": p.idempotency_key, "item_id": p.end_to_end_id,
                        "asset": token.asset, "token": token.address, "to_address": request["to"],
                        "token_amount": request["amount"], "max_fee_per_gas": max_fee,
                        "max_priority_fee_per_gas": tip, "gas_limit": s.gas_limit, "signed_block": signed_block}

                to_send += store.sign_and_store(self.db, s.chain_id, self.wallet, self.conn_id, node_nonce,
                                                requests, sign)
            self.broadcast(to_send)
            signed_now = bool(requests)
            for tx in to_send:
                results[tx.idempotency_key or ""] = PaymentResult(tx.idempotency_key, tx.item_id, "pending", None,
                                                                   tx.tx_hash)
            # A replaced payment answers with its own key: the filler's row carries none.
            for p in payments:
                if p.idempotency_key not in results:
                    latest = known[p.idempotency_key][-1]
                    results[p.idempotency_key] = PaymentResult(p.idempotency_key, p.end_to_end_id, "pending", None,
                                                               latest.tx_hash)
            answers = [results[p.idempotency_key] for p in payments]
        if signed_now and (s.low_balance_alert or s.hot_wallet_cap):
            # After the batch: what the wallet holds once its transfers are mined (the task's log).
            with self._lock:
                unmined = store.unmined(self.db, self.conn_id)
            for alert in self.alerts(unmined):
                log.warning("ALERT connection %s: %s", self.conn_id, alert)
        return answers

    @contextlib.contextmanager
    def _wallet_lock(self):
        """One broadcaster per (chain, wallet) across every worker: a session lock in the warehouse,
        held from the first nonce allocated to the last broadcast, so nonces leave in order."""
        key = f"evm:{self.settings.chain_id}:{self.wallet}"
        self.db.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        try:
            yield
        finally:
            self.db.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))

    def broadcast(self, txs: list[store.StoredTx]) -> dict[str, str | None]:
        """Send stored raw transactions, in nonce order, BROADCAST_BATCH per JSON-RPC batch request;
        the node's error per hash (None when taken).

        "already known" and "nonce too low" are answers, not failures: the receipts
        of every hash the payment has tell what happened (payment_status). A node
        that cannot be reached fails the call after recording what was sent: the
        retry sends the same bytes.
        """
        import httpx

        outcomes: dict[str, str | None] = {}
        ordered = sorted(txs, key=lambda t: t.nonce)
        try:
            with httpx.Client(timeout=30.0) as client:
                for lo in range(0, len(ordered), BROADCAST_BATCH):
                    chunk = ordered[lo:lo + BROADCAST_BATCH]
                    body = [{"jsonrpc": "2.0", "id": n, "method": "eth_sendRawTransaction", "params": [tx.raw_tx]}
                            for n, tx in enumerate(chunk)]
                    response = client.post(self.settings.rpc_url, json=body)
                    response.raise_for_status()
                    answers = {a.get("id"): a for a in response.json()}
                    for n, tx in enumerate(chunk):
                        error = (answers.get(n) or {"error": {"message": "no answer in the batch"}}).get("error")
                        outcomes[tx.tx_hash] = None if error is None else str(error.get("message", error))
        except (httpx.HTTPError, ValueError) as exc:
            store.record_broadcasts(self.db, list(outcomes.items()))
            raise ProviderError(f"connection {self.conn_id!r}: the node at {self.settings.rpc_url} cannot be"
                                f" reached to broadcast: {type(exc).__name__}: {exc}") from None
        store.record_broadcasts(self.db, list(outcomes.items()))
        return outcomes

    async def payment_status(self, idempotency_key: str, reference: str | None = None) -> PaymentResult | None:
        ours = await asyncio.to_thread(self._has_transactions, idempotency_key)
        if not ours and self.delegate() is not None:
            async with self.delegate().session():
                return await self.delegate().payment_status(idempotency_key, reference)
        return await asyncio.to_thread(self._status, idempotency_key)

    def _has_transactions(self, key: str) -> bool:
        with self._lock:
            self._prefetch()
            if key in self._txs:
                return True
            return self.db.execute("SELECT EXISTS (SELECT 1 FROM payouts.evm_transactions WHERE provider = %s"
                                   " AND idempotency_key = %s)", (self.conn_id, key)).fetchone()[0]

    def _prefetch(self) -> None:
        """Once per connector (a poll builds its own): the transactions of every payment without a
        receipt yet, and their receipts in JSON-RPC batches, so that asking about each payment
        costs no round trip to the node for what was known when the poll began."""
        if self._receipts is not None:
            return
        self._latest = int(self._rpc("eth_blockNumber", lambda: self.w3.eth.block_number))
        keys = [k for k, in self.db.execute(
            "SELECT DISTINCT idempotency_key FROM payouts.evm_transactions WHERE provider = %s"
            " AND receipt_status IS NULL AND idempotency_key IS NOT NULL", (self.conn_id,)).fetchall()]
        self._txs = store.transactions_of(self.db, self.conn_id, keys)
        hashes = [t.tx_hash for txs in self._txs.values() for t in txs]
        self._receipts = self._receipts_of(hashes)

    def _receipts_of(self, hashes: list[str]) -> dict[str, dict | None]:
        import httpx

        found: dict[str, dict | None] = {}
        try:
            with httpx.Client(timeout=30.0) as client:
                for lo in range(0, len(hashes), BROADCAST_BATCH):
                    chunk = hashes[lo:lo + BROADCAST_BATCH]
                    response = client.post(self.settings.rpc_url, json=[
                        {"jsonrpc": "2.0", "id": n, "method": "eth_getTransactionReceipt", "params": [h]}
                        for n, h in enumerate(chunk)])
                    response.raise_for_status()
                    answers = {a.get("id"): a for a in response.json()}
                    for n, h in enumerate(chunk):
                        raw = (answers.get(n) or {}).get("result")
                        found[h] = _normalise_receipt(raw) if raw else None
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderError(f"connection {self.conn_id!r}: receipts could not be read at"
                                f" {self.settings.rpc_url}: {type(exc).__name__}: {exc}") from None
        return found

    def _receipt(self, tx_hash: str, live: bool = False):
        """The transaction's receipt (None: not mined), from the poll's prefetch unless `live`."""
        from web3.exceptions import TransactionNotFound

        if not live and self._receipts is not None and tx_hash in self._receipts:
            return self._receipts[tx_hash]
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None

    def _status(self, key: str) -> PaymentResult | None:
        from web3.exceptions import TransactionNotFound

        with self._lock:
            self._prefetch()
            txs = self._txs.get(key) or store.transactions_of(self.db, self.conn_id, [key]).get(key)
        if not txs:
            return None
        item_id = txs[0].item_id
        latest_block = self._latest
        for tx in txs:
            receipt = self._rpc("eth_getTransactionReceipt", lambda: self._receipt(tx.tx_hash))
            if receipt is None:
                continue
            depth = latest_block - int(receipt["blockNumber"]) + 1
            if depth < self.settings.confirmations:
                return PaymentResult(key, item_id, "pending", None, tx.tx_hash)
            return self._final(key, item_id, tx, receipt)
        # No receipt for any hash: still in the node's pool, or gone (a restart, a reorg).
        newest = txs[-1]
        try:
            self._rpc("eth_getTransactionByHash", lambda: self.w3.eth.get_transaction(newest.tx_hash))
            in_pool = True
        except TransactionNotFound:
            in_pool = False
        error = None
        if not in_pool:
            error = self.broadcast([newest]).get(newest.tx_hash)
            if error and "nonce too low" in error.lower():
                # The nonce is used: by one of our hashes (look again) or by something else.
                for tx in txs:
                    receipt = self._rpc("eth_getTransactionReceipt", lambda: self._receipt(tx.tx_hash, live=True))
                    if receipt is not None:
                        return PaymentResult(key, item_id, "pending", None, tx.tx_hash)
                return None
        if (in_pool or error) and self._stuck(newest, latest_block):
            # Waiting in the pool, or refused again (underpriced): the same transfer, higher fees.
            newest = self.replace(newest, filler=newest.purpose == "filler")
        return PaymentResult(key, item_id, "pending", None, newest.tx_hash)

    def _stuck(self, tx: store.StoredTx, latest_block: int) -> bool:
        """Unmined for stuck_after_blocks blocks since it was signed (the chain's clock, not ours)."""
        row = self.db.execute("SELECT signed_block FROM payouts.evm_transactions WHERE tx_hash = %s",
                              (tx.tx_hash,)).fetchone()
        return bool(row and row[0] is not None and latest_block - int(row[0]) >= self.settings.stuck_after_blocks)

    def _final(self, key: str, item_id: str, tx: store.StoredTx, receipt) -> PaymentResult:
        """A receipt deep enough: judged by its status and the token's Transfer log, gas posted."""
        reason_text = None
        if int(receipt["status"]) == 1:
            status, code = ("accepted", None) if self._transfer_logged(tx, receipt) else ("rejected", "MS03")
            if status == "rejected":
                reason_text = "mined without the token's Transfer log of the payment"
        else:
            reason_text = self._revert_reason(tx, receipt)
            lowered = (reason_text or "").lower()
            code = ("AC06" if any(w in lowered for w in _BLACKLIST_WORDS)
                    else "AM04" if any(w in lowered for w in _FUNDS_WORDS) else "MS03")
            status = "rejected"
        if tx.purpose == "filler":
            status, code, reason_text = "rejected", "MS03", "the nonce was filled: the payment was abandoned"
        l1_fee = receipt.get("l1Fee")
        l1_fee = int(l1_fee, 16) if isinstance(l1_fee, str) else (int(l1_fee) if l1_fee is not None else None)
        with self.db.transaction():
            store.record_receipt(self.db, tx.tx_hash, receipt, reason_text, l1_fee)
            fee = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"]) + (l1_fee or 0)
            # Keyed by transaction and block: mined again in another block after a reorg, posted again.
            ledger.post_network_fee(self.db, f"{tx.tx_hash}@{_hex(receipt['blockHash'])}", self.settings.native, fee)
            if status == "accepted" and item_id:
                from payouts.providers.evm import reversal

                reversal.post_send_again(self.db, item_id)
        return PaymentResult(key, item_id, status, code, tx.tx_hash)

    def _transfer_logged(self, tx: store.StoredTx, receipt) -> bool:
        """The token's own Transfer(wallet -> payee, amount) in the receipt (USDT returns no bool)."""
        for entry in receipt["logs"]:
            topics = [_hex(t) for t in entry["topics"]]
            if (entry["address"].lower() == (tx.token or "").lower() and len(topics) == 3
                    and topics[0] == TRANSFER_TOPIC and topics[1] == _topic_address(self.wallet)
                    and topics[2] == _topic_address(tx.to_address or "")
                    and int(_hex(entry["data"]), 16) == tx.token_amount):
                return True
        return False

    def _revert_reason(self, tx: store.StoredTx, receipt) -> str:
        """Replay the call on the state before its block: the token's revert message."""
        call = {"from": self.wallet, "to": tx.token, "value": 0,
                "data": self.w3.eth.get_transaction(tx.tx_hash)["input"]}
        try:
            self.w3.eth.call(call, int(receipt["blockNumber"]) - 1)
        except Exception as exc:  # noqa: BLE001 - the revert is what we want to read
            message = getattr(exc, "message", None) or str(exc)
            return str(message).removeprefix("execution reverted: ")[:500]
        return "reverted (out of gas or a condition of its block)"

    def replace(self, tx: store.StoredTx, *, filler: bool = False) -> store.StoredTx:
        """Replace an unmined transaction at its nonce, both fee caps raised by fee_bump_percent
        (at least 10%, what nodes require); `filler`: a zero-value transfer to self instead."""
        s = self.settings
        bump = 100 + s.fee_bump_percent
        max_fee, tip = self._fees()
        max_fee = max(max_fee, -(-tx.max_fee_per_gas * bump // 100))
        tip = max(tip, -(-tx.max_priority_fee_per_gas * bump // 100))
        if filler:
            body = {"to": self.wallet, "value": 0, "data": b"", "gas": 21_000}
            columns = {"purpose": "filler"}
        else:
            data = self.token_contract(s.tokens[tx.asset]).encode_abi("transfer", args=[tx.to_address,
                                                                                       tx.token_amount])
            body = {"to": tx.token, "value": 0, "data": data, "gas": tx.gas_limit}
            columns = {"purpose": "payment", "idempotency_key": tx.idempotency_key, "item_id": tx.item_id,
                       "asset": tx.asset, "token": tx.token, "to_address": tx.to_address,
                       "token_amount": tx.token_amount}
        signed = self.signer.sign({"type": 2, "chainId": s.chain_id, "nonce": tx.nonce, "maxFeePerGas": max_fee,
                                   "maxPriorityFeePerGas": tip, **body})
        columns.update(max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip, gas_limit=body["gas"],
                       signed_block=int(self.w3.eth.block_number))
        with self._lock:
            new = store.store_replacement(self.db, s.chain_id, self.wallet, self.conn_id, tx, signed.tx_hash,
                                          signed.raw, columns)
        self.broadcast([new])
        return new

    # -- statements ----------------------------------------------------------------------

    def fetch_statements(self, cursor: str | None, dest: Path) -> StatementPage:
        from payouts.providers.evm.statements import fetch_transfer_logs

        self.preflight()
        return fetch_transfer_logs(self, cursor, dest)
