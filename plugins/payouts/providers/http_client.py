"""The httpx client of the provider sandbox (and the template for real providers).

Submissions retry transient failures (5xx, connection errors, 429 honouring
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

from payouts import money, settings
from payouts.providers.base import (
    AmbiguousOutcome, Payment, PaymentResult, ProviderError, ProviderRequestRejected,
    ProviderUnavailable, StatementInfo,
)

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


class SandboxProvider:
    """PaymentProvider over HTTP against the sandbox API (/v1/...)."""

    name = "sandbox"

    def __init__(
        self,
        base_url: str,
        timeout: float = settings.HTTP_TIMEOUT_S,
        *,
        max_attempts: int = 6,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        clock_timeout_s: float = 900.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(connect=min(5.0, timeout), read=timeout, write=timeout,
                                     pool=timeout)
        # Closing a day with a million entries writes hundreds of MB: allow for it.
        self.clock_timeout = httpx.Timeout(connect=5.0, read=clock_timeout_s, write=timeout,
                                           pool=timeout)
        self.max_attempts = max_attempts
        self._backoff = wait_random_exponential(multiplier=backoff_initial_s, max=backoff_max_s)
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    # -- plumbing -----------------------------------------------------------------

    def async_client(self, max_connections: int = settings.SUBMIT_CONCURRENCY) -> httpx.AsyncClient:
        """An AsyncClient sized for `max_connections` requests in flight."""
        return httpx.AsyncClient(
            timeout=self.timeout, verify=ssl_context(),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
        )

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

    async def submit_batch(
        self, client: httpx.AsyncClient, rail: str, payments: list[Payment]
    ) -> list[PaymentResult]:
        """Submit payments on one rail; results in the same order as `payments`."""
        if not payments:
            return []
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

    async def payment_status(
        self, client: httpx.AsyncClient, idempotency_key: str
    ) -> PaymentResult | None:
        """The provider's stored result for a key, or None if it never received it."""
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
        for attempt in Retrying(**self._retrying_kwargs()):
            with attempt:
                try:
                    response = client.request(method, f"{self.base_url}{path}",
                                              timeout=timeout or self.timeout, **kwargs)
                except httpx.TransportError as exc:
                    raise _classify_transport_error(exc) from exc
                _check_status(response)
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
