"""The generic connector: the project's provider API over HTTP (docs/provider-api.yaml).

The sandbox serves this API; a platform can put it in front of any provider of
its own and connect it with an `http`/`https` Airflow connection. Submissions retry transient failures (5xx, connection errors, 429 honouring
Retry-After) with exponential backoff and jitter, always resending the same
bytes under the same idempotency keys. When an attempt may have been executed
but no answer came back and the retries run out, `AmbiguousOutcome` names the
keys so the caller resolves them by status query, never by a new key.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import functools
import os
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
from tenacity import (
    AsyncRetrying, RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt,
    wait_random_exponential,
)

from payouts.core import money
from payouts import settings
from payouts.providers.contract import (
    AmbiguousOutcome, Balance, Connector, ConnectorConfigError, Payment, PaymentResult, ProviderError,
    ProviderRequestRejected, ProviderUnavailable, StatementInfo, StatementPage,
)
from payouts.providers.registry import register

# Statuses after which the request certainly did nothing (sandbox contract: a
# 503 is answered before any work), versus those that may follow execution.
_NOT_EXECUTED_STATUSES = {429, 503}
_MAX_RETRY_AFTER_S = 60.0
# Requests per Verification of Payee call (the sandbox's and the EPC API's ceiling).
VOP_BATCH_SIZE = 1000


@functools.lru_cache(maxsize=1)
def ssl_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads the CA bundle (tens of ms each time)."""
    return httpx.create_ssl_context()


class _Retryable(Exception):
    """One failed attempt that is worth retrying with the same keys."""

    def __init__(self, description: str, maybe_executed: bool, retry_after: float | None = None):
        super().__init__(description)
        self.maybe_executed = maybe_executed
        self.retry_after = retry_after


def payment_to_wire(p: Payment) -> dict[str, Any]:
    return {
        "idempotency_key": p.idempotency_key,
        "end_to_end_id": p.end_to_end_id,
        "amount": money.format_amount(p.amount_minor, p.currency),
        "currency": p.currency,
        "creditor": p.creditor.to_wire(),
    }


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


def _classify_transport_error(exc: httpx.TransportError) -> _Retryable:
    # Connect failures and pool waits mean the request never left; anything
    # after that (read timeout, dropped connection) may follow execution.
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return _Retryable(f"{type(exc).__name__}: {exc}", maybe_executed=not never_sent)


def _check_status(response: httpx.Response) -> None:
    code = response.status_code
    if code == 429 or code >= 500:
        raise _Retryable(
            f"HTTP {code}", maybe_executed=code not in _NOT_EXECUTED_STATUSES,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text


# Currencies whose balance is shown for a rail that carries any currency (swift), unless the
# connection's extra `balance_currencies` lists others.
_ANY_CURRENCY_BALANCES = ("EUR", "USD", "GBP")


def base_url_of(conn_id: str, connection: Any) -> str:
    """http(s)://host[:port][/path] from an Airflow connection (the host may carry the scheme)."""
    host = (connection.host or "").strip()
    if not host:
        raise ConnectorConfigError(f"connection {conn_id!r} has no host: the provider's address is missing")
    if "://" in host:
        url = host
    else:
        scheme = next((s for s in ((connection.schema or "").lower(), (connection.conn_type or "").lower())
                       if s in ("http", "https")), "http")
        url = f"{scheme}://{host}"
    if connection.port:
        url = f"{url.rstrip('/')}:{int(connection.port)}"
    schema = (connection.schema or "").strip("/")
    if schema and schema.lower() not in ("http", "https"):
        url = f"{url.rstrip('/')}/{schema}"
    return url.rstrip("/")


@register("generic", capabilities={"payment_status", "statements", "balances", "fx_quote", "verify_payees"})
class GenericHttpConnector(Connector):
    """The provider API over HTTP (/v1/...): the sandbox, or a platform's own gateway."""

    def __init__(
        self,
        base_url: str,
        timeout: float = settings.HTTP_TIMEOUT_S,
        *,
        conn_id: str = "payouts_sandbox",
        rails: tuple[str, ...] = (),
        max_attempts: int = 6,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        clock_timeout_s: float = 900.0,
        max_connections: int = settings.SUBMIT_CONCURRENCY,
        balance_currencies: tuple[str, ...] = _ANY_CURRENCY_BALANCES,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        super().__init__(conn_id, rails)
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(connect=min(5.0, timeout), read=timeout, write=timeout,
                                     pool=timeout)
        # Closing a day with a million entries writes hundreds of MB: allow for it.
        self.clock_timeout = httpx.Timeout(connect=5.0, read=clock_timeout_s, write=timeout,
                                           pool=timeout)
        self.max_attempts = max_attempts
        self.max_connections = max_connections
        self.balance_currencies = tuple(balance_currencies)
        self._backoff = wait_random_exponential(multiplier=backoff_initial_s, max=backoff_max_s)
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._transport = transport
        self._async: httpx.AsyncClient | None = None

    @classmethod
    def from_connection(cls, conn_id: str, connection: Any, rails: tuple[str, ...] = ()) -> GenericHttpConnector:
        extra = connection.extra_dejson if connection.extra else {}
        try:
            timeout = float(extra.get("timeout_s", settings.HTTP_TIMEOUT_S))
            concurrency = int(extra.get("max_connections", settings.SUBMIT_CONCURRENCY))
        except (TypeError, ValueError):
            raise ConnectorConfigError(
                f"connection {conn_id!r}: extra timeout_s and max_connections must be numbers") from None
        if timeout <= 0 or concurrency < 1:
            raise ConnectorConfigError(f"connection {conn_id!r}: timeout_s and max_connections must be positive")
        currencies = extra.get("balance_currencies", _ANY_CURRENCY_BALANCES)
        return cls(base_url_of(conn_id, connection), timeout, conn_id=conn_id, rails=rails,
                   max_connections=concurrency, balance_currencies=tuple(currencies))

    # -- plumbing -----------------------------------------------------------------

    async def open(self) -> None:
        """The payment calls' connection pool, sized for `max_connections` requests in flight."""
        if self._async is None:
            self._async = httpx.AsyncClient(
                timeout=self.timeout, verify=ssl_context(), transport=self._transport,
                limits=httpx.Limits(max_connections=self.max_connections,
                                    max_keepalive_connections=self.max_connections),
            )

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None

    def _pool(self) -> httpx.AsyncClient:
        if self._async is None:
            raise RuntimeError(f"connection {self.conn_id!r}: payments need `async with connector.session()`")
        return self._async

    def client(self) -> httpx.Client:
        """The provider's synchronous client: one connection pool for every sync call (thread-safe)."""
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout, verify=ssl_context())
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return self._backoff(state)

    def _retrying_kwargs(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.max_attempts),
            "wait": self._wait,
            "retry": retry_if_exception_type(_Retryable),
            "reraise": True,
        }

    # -- payments -----------------------------------------------------------------

    async def submit(self, rail: str, payments: list[Payment]) -> list[PaymentResult]:
        """Submit payments on one rail; results in the same order as `payments`."""
        if not payments:
            return []
        client = self._pool()
        keys = [p.idempotency_key for p in payments]
        # Serialised once: every attempt resends exactly the same bytes and keys.
        content = msgspec.json.encode({"rail": rail, "payments": [payment_to_wire(p) for p in payments]})
        url = f"{self.base_url}/v1/payments/batch"
        maybe_executed = False
        try:
            async for attempt in AsyncRetrying(**self._retrying_kwargs()):
                with attempt:
                    try:
                        response = await client.post(
                            url, content=content, timeout=self.timeout,
                            headers={"Content-Type": "application/json"},
                        )
                    except httpx.TransportError as exc:
                        failure = _classify_transport_error(exc)
                        maybe_executed |= failure.maybe_executed
                        raise failure from exc
                    try:
                        _check_status(response)
                    except _Retryable as failure:
                        maybe_executed |= failure.maybe_executed
                        raise
        except _Retryable as exc:
            if maybe_executed:
                raise AmbiguousOutcome(keys, str(exc)) from exc
            raise ProviderUnavailable(keys, str(exc)) from exc
        if response.status_code != 200:
            raise ProviderRequestRejected(response.status_code, _detail(response))
        results = [PaymentResult.from_wire(r) for r in msgspec.json.decode(response.content)["results"]]
        if [r.idempotency_key for r in results] != keys:
            raise ProviderError("provider answered with results that do not match the request")
        return results

    async def payment_status(self, idempotency_key: str, reference: str | None = None) -> PaymentResult | None:
        """The provider's stored result for a key, or None if it never received it."""
        client = self._pool()
        url = f"{self.base_url}/v1/payments/{quote(idempotency_key, safe='')}"
        try:
            async for attempt in AsyncRetrying(**self._retrying_kwargs()):
                with attempt:
                    try:
                        response = await client.get(url, timeout=self.timeout)
                    except httpx.TransportError as exc:
                        raise _classify_transport_error(exc) from exc
                    _check_status(response)
        except _Retryable as exc:
            raise ProviderUnavailable([idempotency_key], str(exc)) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ProviderRequestRejected(response.status_code, _detail(response))
        return PaymentResult.from_wire(response.json())

    # -- sync helpers (statements, clock, health) -------------------------------

    def _request(self, method: str, path: str, *, timeout: httpx.Timeout | None = None,
                 **kwargs) -> httpx.Response:
        client = self.client()
        try:
            for attempt in Retrying(**self._retrying_kwargs()):
                with attempt:
                    try:
                        response = client.request(method, f"{self.base_url}{path}",
                                                  timeout=timeout or self.timeout, **kwargs)
                    except httpx.TransportError as exc:
                        raise _classify_transport_error(exc) from exc
                    _check_status(response)
        except _Retryable as exc:
            raise ProviderUnavailable([], f"{method} {self.base_url}{path}: {exc}") from exc
        if response.status_code >= 400:
            raise ProviderRequestRejected(response.status_code, _detail(response))
        return response

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/v1/health").json()

    def fx_quotes(self, requests: list[tuple[str, str, str, int]]) -> list[dict]:
        """Firm FX quotes for (ref, from, to, amount_minor): rate, fee_minor, to_amount_minor per ref."""
        answers: list[dict] = []
        for start in range(0, len(requests), 1000):
            chunk = requests[start:start + 1000]
            body = {"quotes": [{"ref": ref, "from": src, "to": dst, "amount": money.format_amount(amount, src)}
                               for ref, src, dst, amount in chunk]}
            for q in self._request("POST", "/v1/fx/quotes", json=body).json()["quotes"]:
                answers.append({"ref": q["ref"], "from": q["from"], "to": q["to"], "rate": q["rate"],
                                "quote_id": q["quote_id"], "fee_minor": money.to_minor(q["fee"], q["from"]),
                                "to_amount_minor": money.to_minor(q["to_amount"], q["to"])})
        return answers

    def available_balance(self, rail: str, currency: str) -> int:
        """Our prefunded balance on a rail in a currency, in minor units."""
        body = self._request("GET", f"/v1/balances/{rail}/{currency}").json()
        return money.to_minor(body["available"], currency)

    def balances(self) -> list[Balance]:
        """The prefunded balance of every (rail, currency) this connection serves."""
        from payouts.core.rails import RAILS

        answers = []
        for rail in self.rails:
            for currency in sorted(RAILS[rail].currencies or self.balance_currencies):
                answers.append(Balance(rail, currency, self.available_balance(rail, currency)))
        return answers

    def fetch_statements(self, cursor: str | None, dest: Path) -> StatementPage:
        """Download the files listed after `cursor` (the last file's name) into `dest`.

        A cursor the provider no longer knows (its state was reset) lists from the
        start; files already held are known by the caller by name and hash.
        """
        try:
            listed = self.list_statements(cursor)
        except ProviderRequestRejected as exc:
            if exc.status_code != 404 or cursor is None:
                raise
            listed = self.list_statements(None)
        files = [self.download_statement(info.name, Path(dest) / info.name, info.sha256) for info in listed]
        return StatementPage(files=files, cursor=listed[-1].name if listed else cursor)

    def advance_clock(self, days: int = 1) -> dict[str, Any]:
        """Close `days` business days (sandbox only). Not retried: it is not idempotent."""
        response = self.client().post(f"{self.base_url}/v1/clock/advance", json={"days": days},
                                      timeout=self.clock_timeout)
        if response.status_code != 200:
            raise ProviderRequestRejected(response.status_code, _detail(response))
        body = response.json()
        body["statements"] = [StatementInfo.from_wire(s) for s in body["statements"]]
        return body

    def executions(self) -> dict[str, int]:
        """Debug counters of the sandbox (executed payments, duplicated EndToEndIds)."""
        return self._request("GET", "/v1/executions").json()

    def list_statements(self, since: str | None = None) -> list[StatementInfo]:
        params = {"since": since} if since else None
        body = self._request("GET", "/v1/statements", params=params).json()
        return [StatementInfo.from_wire(s) for s in body["statements"]]

    def download_statement(self, name: str, dest_path: str | Path,
                           expected_sha256: str | None = None) -> Path:
        """Stream a statement file to disk (atomically); verify its hash when given."""
        dest = Path(dest_path)
        if dest.is_dir():
            dest = dest / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        url = f"{self.base_url}/v1/statements/{quote(name, safe='')}"
        timeout = httpx.Timeout(connect=5.0, read=self.timeout.read, write=self.timeout.write,
                                pool=self.timeout.pool)

        def fetch() -> str:
            digest = hashlib.sha256()
            client = self.client()
            try:
                with client.stream("GET", url, timeout=timeout) as response:
                    _check_status(response)
                    if response.status_code != 200:
                        response.read()
                        raise ProviderRequestRejected(response.status_code, _detail(response))
                    with open(partial, "wb") as out:
                        for chunk in response.iter_bytes(1 << 20):
                            digest.update(chunk)
                            out.write(chunk)
            except httpx.TransportError as exc:
                raise _classify_transport_error(exc) from exc
            return digest.hexdigest()

        try:
            for attempt in Retrying(**self._retrying_kwargs()):
                with attempt:
                    sha = fetch()
        except _Retryable as exc:
            partial.unlink(missing_ok=True)
            raise ProviderUnavailable([], f"download of {name} failed: {exc}") from exc
        if expected_sha256 and sha != expected_sha256:
            partial.unlink(missing_ok=True)
            raise ProviderError(f"statement {name}: sha256 {sha} != expected {expected_sha256}")
        os.replace(partial, dest)
        return dest

    # -- Verification of Payee ----------------------------------------------------------

    def verify_payees(self, requests: list[tuple[str, str, str]]) -> bytes:
        """Verify up to VOP_BATCH_SIZE (request_id, iban, name); the bank's pain.002 bytes.

        Read-only at the provider, so every retryable failure is retried.
        Parse the answer with `payouts.checks.vop.parse_vop_response`. For more
        requests use `verify_payee_batches`: one document per batch.
        """
        if len(requests) > VOP_BATCH_SIZE:
            raise ValueError(
                f"{len(requests)} VoP requests: at most {VOP_BATCH_SIZE} per document; "
                "use verify_payee_batches"
            )
        if not requests:
            raise ValueError("no VoP requests given")
        content = msgspec.json.encode(
            {"requests": [{"request_id": rid, "iban": iban, "name": name} for rid, iban, name in requests]})
        try:
            response = self._request("POST", "/v1/vop", content=content,
                                     headers={"Content-Type": "application/json"})
        except _Retryable as exc:
            raise ProviderUnavailable([], f"verification of payee failed: {exc}") from exc
        if response.status_code != 200:
            raise ProviderRequestRejected(response.status_code, _detail(response))
        return response.content

    def verify_payee_batches(self, requests: list[tuple[str, str, str]],
                             batch_size: int = VOP_BATCH_SIZE) -> list[bytes]:
        """`verify_payees` over any number of requests: one pain.002 document per batch."""
        size = min(batch_size, VOP_BATCH_SIZE)
        chunks = [requests[i:i + size] for i in range(0, len(requests), size)]
        if len(chunks) <= 1:
            return [self.verify_payees(chunk) for chunk in chunks]
        # Read-only requests: a few in flight at once, answers in request order.
        with ThreadPoolExecutor(max_workers=min(settings.SUBMIT_CONCURRENCY, len(chunks))) as pool:
            return list(pool.map(self.verify_payees, chunks))
