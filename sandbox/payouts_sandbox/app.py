"""The provider sandbox HTTP API: payment rails simulated behind a FastAPI app.

Idempotent batch submission, status queries, a business-day clock whose close
writes end-of-day statements (camt.053 for bank rails, CSV exports for crypto),
and deterministic fault injection. See docs in the module's routes; amounts on
the wire are always decimal strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
from fastapi import Body, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import (
    BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, field_validator,
)

from payouts.core import money
from payouts import settings
from payouts.core.rails import RAILS
from payouts_sandbox.faults import Faults
from payouts_sandbox.store import IncomingPayment, SandboxStore
from payouts_sandbox.vop import answer as vop_answer
from payouts_sandbox.vop import write_vop_report

_AMOUNT_RE = re.compile(r"[0-9]+(\.[0-9]+)?")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}")
# Max35Text restricted to the SEPA/SWIFT character set, no leading or double slash.
_E2E_PATTERN = r"^[A-Za-z0-9\-?:().,'+ ][A-Za-z0-9/\-?:().,'+ ]{0,34}$"
MAX_PAYMENTS_PER_REQUEST = 1000


class CreditorIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr = Field(min_length=1, max_length=140)
    country: StrictStr = Field(pattern=r"^[A-Z]{2}$")
    iban: StrictStr | None = Field(default=None, max_length=34)
    bic: StrictStr | None = Field(default=None, max_length=11)
    account_number: StrictStr | None = Field(default=None, max_length=34)
    routing_code: StrictStr | None = Field(default=None, max_length=35)
    wallet_address: StrictStr | None = Field(default=None, max_length=128)
    network: StrictStr | None = Field(default=None, max_length=32)


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    idempotency_key: StrictStr = Field(min_length=1, max_length=128)
    end_to_end_id: StrictStr = Field(pattern=_E2E_PATTERN)
    amount: str
    currency: StrictStr
    creditor: CreditorIn

    @field_validator("end_to_end_id")
    @classmethod
    def _no_double_slash(cls, value: str) -> str:
        if "//" in value:
            raise ValueError("end_to_end_id must not contain '//'")
        return value

    @field_validator("amount", mode="before")
    @classmethod
    def _amount_is_decimal_string(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(
                'amount must be a decimal string such as "12.34", never a JSON number'
            )
        if not _AMOUNT_RE.fullmatch(value):
            raise ValueError(f'amount {value!r} is not a positive decimal string such as "12.34"')
        return value


class BatchIn(BaseModel):
    rail: StrictStr
    payments: list[PaymentIn] = Field(min_length=1, max_length=MAX_PAYMENTS_PER_REQUEST)

    @field_validator("rail")
    @classmethod
    def _known_rail(cls, value: str) -> str:
        if value not in RAILS:
            raise ValueError(f"unknown rail {value!r}; rails: {', '.join(RAILS)}")
        return value


class VopRequestIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Echoed as OrgnlEndToEndId: Max35Text.
    request_id: StrictStr = Field(min_length=1, max_length=35)
    iban: StrictStr = Field(min_length=1, max_length=42)
    name: StrictStr = Field(min_length=1, max_length=140)


class VopBatchIn(BaseModel):
    requests: list[VopRequestIn] = Field(min_length=1, max_length=MAX_PAYMENTS_PER_REQUEST)


class ClockIn(BaseModel):
    days: StrictInt = Field(ge=1, le=366)


def amount_minor(p: PaymentIn) -> int:
    """The payment's amount in minor units; ValueError with a clear message otherwise."""
    if p.currency not in money.EXPONENTS:
        raise ValueError(f"unknown currency or asset {p.currency!r}")
    try:
        minor = money.to_minor(p.amount, p.currency)
    except money.AmountError as exc:
        raise ValueError(str(exc)) from None
    if minor <= 0:
        raise ValueError("amount must be greater than zero")
    return minor


def body_hash(rail: str, p: PaymentIn, minor: int) -> str:
    """Hash of the canonical payment (+ rail): what makes a replay 'the same request'."""
    c = p.creditor
    canonical = msgspec.json.encode(
        [rail, p.idempotency_key, p.end_to_end_id, minor, p.currency, c.name,
         c.country, c.iban, c.bic, c.account_number, c.routing_code, c.wallet_address,
         c.network])
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def _validation_detail(exc: ValidationError) -> list[dict]:
    return [
        {"loc": ["body", *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


async def _run_clock(store: SandboxStore, day_seconds: float) -> None:
    """Close a business day every `day_seconds`, as a bank's end of day would, for as long as it runs."""
    while True:
        await asyncio.sleep(day_seconds)
        await asyncio.to_thread(store.advance, 1)


def create_app(
    state_dir: str | Path | None = None,
    latency_ms: float | None = None,
    faults: str | dict | Faults | None = None,
    seed: int = 0,
    start_date: dt.date | None = None,
    day_seconds: float | None = None,
) -> FastAPI:
    """The sandbox app over a state dir; usable in-process with httpx.ASGITransport.

    `day_seconds`: a clock that runs by itself, closing one business day (and
    writing its statements) every that many seconds while the app is served;
    without it days pass only through POST /v1/clock/advance.
    """
    store = SandboxStore(state_dir or settings.sandbox_state_dir(), start_date=start_date)
    fault_config = Faults.from_spec(faults, seed)
    latency_s = (settings.sandbox_latency_ms() if latency_ms is None else latency_ms) / 1000
    attempts: Counter[str] = Counter()
    if day_seconds is not None and day_seconds <= 0:
        raise ValueError("day_seconds must be positive")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        clock = asyncio.create_task(_run_clock(store, day_seconds)) if day_seconds else None
        try:
            yield
        finally:
            if clock is not None:
                clock.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await clock

    app = FastAPI(title="Payouts provider sandbox", version="1", lifespan=lifespan)
    app.state.store = store
    app.state.faults = fault_config

    async def wait() -> None:
        if latency_s > 0:
            await asyncio.sleep(latency_s)

    @app.get("/v1/health")
    async def health() -> dict:
        return {"status": "ok", "business_date": store.business_date.isoformat(), "day_seconds": day_seconds}

    @app.post("/v1/payments/batch")
    async def submit_batch(request: Request) -> Response:
        """Submit up to 1000 payments on one rail; results in request order.

        Body: {"rail": ..., "payments": [{"idempotency_key", "end_to_end_id",
        "amount": "12.34", "currency", "creditor": {...}}]}.
        """
        raw = await request.body()
        await wait()
        request_hash = hashlib.blake2b(raw, digest_size=16).hexdigest()
        attempts[request_hash] += 1
        attempt = attempts[request_hash]
        if fault_config.transient(request_hash, attempt):
            return JSONResponse({"detail": "service temporarily unavailable (simulated)"},
                                status_code=503)
        try:
            batch = BatchIn.model_validate_json(raw)
        except ValidationError as exc:
            return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)
        incoming: list[IncomingPayment] = []
        errors: list[dict] = []
        for i, p in enumerate(batch.payments):
            try:
                minor = amount_minor(p)
            except ValueError as exc:
                errors.append({"loc": ["body", "payments", i, "amount"], "msg": str(exc),
                               "type": "value_error"})
                continue
            incoming.append(IncomingPayment(p.idempotency_key, p.end_to_end_id, minor, p.currency,
                                            p.creditor.__dict__, body_hash(batch.rail, p, minor)))
        if errors:
            return JSONResponse({"detail": errors}, status_code=422)
        results = await asyncio.to_thread(store.submit, batch.rail, incoming, fault_config)
        if fault_config.lost_response(request_hash, attempt):
            return JSONResponse({"detail": "gateway timeout (simulated lost response)"},
                                status_code=504)
        return Response(msgspec.json.encode({"results": results}), media_type="application/json")

    @app.post("/v1/vop")
    async def verify_payees(request: Request) -> Response:
        """Verification of Payee for up to 1000 (request_id, iban, name).

        Answers a pain.002.001.10 document (application/xml) with one
        TxInfAndSts per request: RCVC, RVMC (held name in AddtlInf), RVNM, RVNA.
        Read-only and deterministic per (seed, IBAN), so a retry is harmless.
        """
        raw = await request.body()
        await wait()
        request_hash = hashlib.blake2b(raw, digest_size=16).hexdigest()
        attempts[f"vop:{request_hash}"] += 1
        if fault_config.transient(request_hash, attempts[f"vop:{request_hash}"]):
            return JSONResponse({"detail": "service temporarily unavailable (simulated)"},
                                status_code=503)
        try:
            batch = VopBatchIn.model_validate_json(raw)
        except ValidationError as exc:
            return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)
        seen = Counter(r.request_id for r in batch.requests)
        duplicates = sorted(k for k, n in seen.items() if n > 1)
        if duplicates:
            return JSONResponse({"detail": [{
                "loc": ["body", "requests"], "type": "value_error",
                "msg": f"request_id must be unique within a request: {duplicates[:10]}"}]},
                status_code=422)
        answers = [vop_answer(r.request_id, r.iban, r.name, fault_config)
                   for r in batch.requests]
        document = write_vop_report(answers, msg_id=f"VOP{request_hash[:32]}",
                                    original_msg_id=f"VOPREQ{request_hash[:29]}")
        return Response(document, media_type="application/xml")

    @app.get("/v1/payments/{idempotency_key:path}")
    async def payment_status(idempotency_key: str) -> Response:
        await wait()
        result = await asyncio.to_thread(store.get, idempotency_key)
        if result is None:
            return JSONResponse({"detail": "unknown idempotency key"}, status_code=404)
        return JSONResponse(result)

    @app.post("/v1/clock/advance")
    async def advance_clock(clock: ClockIn = Body(...)) -> dict:  # noqa: B008
        """Close the current business day(s) and write their statements."""
        new_date, statements = await asyncio.to_thread(store.advance, clock.days)
        return {"business_date": new_date.isoformat(), "statements": statements}

    @app.get("/v1/statements")
    async def list_statements(since: str | None = None) -> Response:
        try:
            statements = await asyncio.to_thread(store.statements, since)
        except KeyError:
            return JSONResponse({"detail": f"unknown statement {since!r}"}, status_code=404)
        return JSONResponse({"statements": statements})

    @app.get("/v1/statements/{name:path}")
    async def download_statement(name: str) -> Response:
        if not _NAME_RE.fullmatch(name) or ".." in name:
            return JSONResponse({"detail": "invalid statement name"}, status_code=400)
        path = store.statement_path(name)
        if path is None:
            return JSONResponse({"detail": "unknown statement"}, status_code=404)
        media = "application/xml" if name.endswith(".xml") else "text/csv"
        return FileResponse(path, media_type=media, filename=name)

    @app.post("/v1/fx/quotes")
    async def fx_quotes(request: Request) -> Response:
        """Firm quotes: {"quotes": [{"ref", "from", "to", "amount"}]} -> rate, fee (in `from`), to_amount.

        Rates are the indicative cross rate less a 0.4% spread, fixed per pair, so a
        retried quote gives the same answer; the fee is 0.1% of the amount, at least
        one minor unit.
        """
        from decimal import ROUND_DOWN, ROUND_UP, Decimal

        try:
            body = json.loads(await request.body())
            wanted = body["quotes"]
            answers = []
            for q in wanted:
                src, dst = q["from"], q["to"]
                amount = money.to_minor(str(q["amount"]), src) if isinstance(q["amount"], str) else None
                if amount is None or amount <= 0 or src == dst:
                    raise ValueError(f"quote {q.get('ref')!r}: amount must be a positive decimal string"
                                     " and the currencies must differ")
                rate = (Decimal(money.INDICATIVE_PER_EUR[dst]) / Decimal(money.INDICATIVE_PER_EUR[src])
                        * Decimal("0.996")).quantize(Decimal("0.00000001"), rounding=ROUND_DOWN)
                fee = max(1, int((Decimal(amount) * Decimal("0.001")).to_integral_value(rounding=ROUND_UP)))
                converted = (money.to_decimal(amount - fee, src) * rate).scaleb(money.exponent(dst))
                to_minor = int(converted.to_integral_value(rounding=ROUND_DOWN))
                answers.append({"ref": q["ref"], "from": src, "to": dst, "rate": str(rate),
                                "fee": money.format_amount(fee, src),
                                "to_amount": money.format_amount(to_minor, dst),
                                "quote_id": f"FXQ-{hashlib.blake2b(json.dumps(q, sort_keys=True).encode(), digest_size=8).hexdigest()}"})
        except (KeyError, TypeError, ValueError, money.AmountError) as exc:
            return JSONResponse({"detail": f"bad quote request: {exc}"}, status_code=422)
        return JSONResponse({"quotes": answers})

    @app.get("/v1/balances/{rail}/{currency}")
    async def balance(rail: str, currency: str) -> dict:
        """The platform's available prefunding on a rail in a currency (decimal string)."""
        from payouts_sandbox.store import RAILS as STORE_RAILS

        if rail not in STORE_RAILS or currency not in money.EXPONENTS:
            return JSONResponse({"detail": f"unknown rail or currency: {rail} {currency}"}, status_code=404)
        minor = await asyncio.to_thread(store.available, rail, currency)
        return {"rail": rail, "currency": currency, "available": money.format_amount(minor, currency)}

    @app.get("/v1/executions")
    async def executions() -> dict:
        return await asyncio.to_thread(store.executions)

    return app

