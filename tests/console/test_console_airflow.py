"""The console inside a real Airflow: auth, upload -> run -> HITL approval (four eyes) -> the end,
CSV exports, the API's idempotency, and the dashboard in headless Chromium.

The tests run in file order and share one Airflow (module fixture); the run total is over
PAYOUTS_APPROVAL_TOTAL_EUR so a person must approve it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import airflow_stack  # noqa: E402
from tests_support import fresh_database  # noqa: E402

pytestmark = pytest.mark.console
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
STATE: dict = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from payouts_sandbox.process import start_sandbox

    started = time.time()
    url, drop = fresh_database("embedded")
    tmp = tmp_path_factory.mktemp("console")
    sandbox = start_sandbox(tmp / "sandbox", latency_ms=0, port=0)
    try:
        stack = airflow_stack.start(tmp, url, sandbox.url, {
            "PAYOUTS_APPROVAL_TOTAL_EUR": "500",          # this file's run (~1,030 EUR) needs a person
            "PAYOUTS_APPROVAL_NEW_PAYEES": "1000",
            "PAYOUTS_APPROVERS": "creator,approver",      # the creator is dropped for their own run
            "PAYOUTS_APPROVAL_TIMEOUT_H": "1",
        })
    except BaseException:
        sandbox.stop()
        drop()
        raise
    STATE["startup_s"] = round(time.time() - started, 1)
    try:
        yield stack
    finally:
        try:
            airflow_stack.stop(stack)
        finally:
            sandbox.stop()
            drop()


def test_requests_without_a_valid_token_are_refused(stack):
    with stack.client(None) as anonymous:
        assert anonymous.get("/payouts/api/v1/runs").status_code == 401
        assert anonymous.get("/payouts/api/v1/runs", headers={"Authorization": "Bearer nonsense"}).status_code == 403
        assert anonymous.post("/payouts/api/v1/files", files={"file": ("a.csv", b"x")}).status_code == 401
        page = anonymous.get("/payouts/dashboard", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"].startswith("/auth/login")
        assert anonymous.get("/payouts/static/console.css").status_code == 401
    with stack.client("viewer") as viewer:  # may read, may not start runs
        assert viewer.get("/payouts/api/v1/runs").status_code == 200
        assert viewer.post("/payouts/api/v1/files", files={"file": ("a.csv", b"x")}).status_code == 403


def test_the_api_is_in_the_openapi_schema(stack):
    with stack.client("viewer") as client:
        schema = client.get("/payouts/openapi.json").json()
    for path in ("/api/v1/files", "/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/runs/{run_id}/items",
                 "/api/v1/items/{payout_id}", "/api/v1/reconciliation/summary", "/api/v1/breaks"):
        assert path in schema["paths"], path


def test_upload_starts_a_run_and_the_same_file_again_is_refused(stack, payout_file):
    with stack.client("creator") as client:
        r = client.post("/payouts/api/v1/files", files={"file": ("march.csv", payout_file, "text/csv")})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["rows"]["rows"] == 5 and body["rows"]["accepted"] == 3, body
        assert {p["payout_id"] for p in body["rejected_rows"]} == {"=1+1", "P-1005"}
        STATE.update(run_id=body["run_id"], dag_run_id=body["dag_run_id"])
        again = client.post("/payouts/api/v1/files", files={"file": ("copy.csv", payout_file, "text/csv")})
        assert again.status_code == 409 and "already uploaded" in again.json()["detail"]
        dag_run = client.get(f"/api/v2/dags/payout_run/dagRuns/{body['dag_run_id']}").json()
        assert dag_run["conf"]["created_by"] == "creator"


def test_a_large_run_waits_for_a_person_and_its_creator_cannot_approve(stack):
    run_id, dag_run_id = STATE["run_id"], STATE["dag_run_id"]
    started = time.time()
    with stack.client("creator") as creator:
        def awaiting():
            run = creator.get(f"/payouts/api/v1/runs/{run_id}").json()
            if run["status"] in ("failed", "success"):
                raise AssertionError(f"run ended before approval: {run}\n{stack.logs()}")
            return run["status"] == "awaiting_approval" and run
        run = airflow_stack.wait_for(awaiting, 240, what="the approval request")
        STATE["to_approval_s"] = round(time.time() - started, 1)
        assert run["by_status"].get("ready", 0) >= 3
        hitl = f"/api/v2/dags/payout_run/dagRuns/{dag_run_id}/taskInstances/human_approval/-1/hitlDetails"
        detail = creator.get(hitl).json()
        assert [u["id"] for u in detail["assigned_users"]] == ["approver"]
        assert "Largest payouts" in detail["body"] and "EUR" in detail["body"]
        refused = creator.patch(hitl, json={"chosen_options": ["Approve"]})
        assert refused.status_code == 403, refused.text
    with stack.client("approver") as approver:
        answered = approver.patch(hitl, json={"chosen_options": ["Approve"]})
        assert answered.status_code == 200, answered.text


def test_the_approved_run_goes_to_the_end(stack):
    run_id = STATE["run_id"]
    started = time.time()
    with stack.client("viewer") as client:
        def finished():
            run = client.get(f"/payouts/api/v1/runs/{run_id}").json()
            return run["status"] in ("success", "failed") and run
        run = airflow_stack.wait_for(finished, 240, what="the end of the run")
        STATE["to_end_s"] = round(time.time() - started, 1)
        assert run["status"] == "success", f"{run}\n{stack.logs()}"
        assert run["approved_by"] == "approver" and run["approval_policy"] == "human"
        assert run["by_status"].get("accepted", 0) + run["by_status"].get("settled", 0) >= 3, run
        assert run["money"]["EUR"]["paid_out"] == "800.50"
        items = client.get(f"/payouts/api/v1/runs/{run_id}/items").json()
        assert {i["recipient_name"] for i in items} >= {"@Acme Studio", "+Plus Media", "-Dash Design"}
        history = client.get("/payouts/api/v1/items/P-1001").json()
        assert history["item"]["status"] in ("accepted", "settled")
        assert [e["to_status"] for e in history["events"]][:3] == ["snapshotted", "ready", "approved"]
        assert {p["kind"] for p in history["postings"]} >= {"earning", "reserve", "send"}
        assert history["attempts"][0]["status"] == "accepted"
        batches = client.get(f"/payouts/api/v1/runs/{run_id}/batches").json()
        assert batches and batches[0]["airflow_path"].startswith(f"dags/payout_run/runs/{STATE['dag_run_id']}/tasks/submit_")
        # Every batch was sent and answered: done, its payments counted by the provider's answer.
        assert {b["status"] for b in batches} == {"done"}, batches
        accepted = sum(b["accepted"] for b in batches)
        assert accepted == sum(1 for i in items if i["status"] in ("accepted", "settled", "returned")), batches
        assert accepted >= 3, batches
        assert all(b["unanswered"] == 0 and b["accepted"] + b["rejected"] >= 1 for b in batches), batches
        assert {b["provider"] for b in batches} == {"payouts_sandbox"}, batches
        STATE["batches"] = batches


def test_csv_exports_neutralise_formulas(stack):
    run_id = STATE["run_id"]
    with stack.client("viewer") as client:
        items = client.get(f"/payouts/api/v1/runs/{run_id}/items", params={"format": "csv"})
        assert items.headers["content-type"].startswith("text/csv")
        text = items.text
        for name in ("@Acme Studio", "+Plus Media", "-Dash Design"):
            assert f",'{name}," in text, name
        lines = text.splitlines()
        assert all(not cell.startswith(("=", "+", "-", "@")) for line in lines for cell in line.split(","))
        held = client.get(f"/payouts/api/v1/items/{quote('=1+1', safe='')}", params={"format": "csv"})
        assert held.status_code == 200 and "'=1+1" in held.text
        for path in ("/payouts/api/v1/runs", f"/payouts/api/v1/runs/{run_id}", "/payouts/api/v1/breaks",
                     "/payouts/api/v1/reconciliation/summary"):
            r = client.get(path, params={"format": "csv"})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), path


def test_post_runs_is_idempotent_on_its_key(stack):
    payouts = [{"payout_id": "API-1", "recipient_id": "C-010", "name": "Api Payee", "country": "DE",
                "amount": "12.00", "currency": "EUR", "iban": "DE89370400440532013000"}]
    with stack.client("creator") as client:
        first = client.post("/payouts/api/v1/runs", json={"payouts": payouts}, headers={"Idempotency-Key": "key-000001"})
        assert first.status_code == 201, first.text
        same = client.post("/payouts/api/v1/runs", json={"payouts": payouts}, headers={"Idempotency-Key": "key-000001"})
        assert same.status_code == 200 and same.json()["run_id"] == first.json()["run_id"]
        other = client.post("/payouts/api/v1/runs", json={"payouts": payouts[:0] + [dict(payouts[0], amount="13.00")]},
                            headers={"Idempotency-Key": "key-000001"})
        assert other.status_code == 422
        # the same payout id under a new key: the row is refused, not paid twice
        again = client.post("/payouts/api/v1/runs", json={"payouts": payouts}, headers={"Idempotency-Key": "key-000002"})
        assert again.status_code == 201 and again.json()["rows"]["seen_before"] == 1


def test_the_dashboard_in_chromium(stack):
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("no /usr/bin/chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    token = stack.token("viewer")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        context.add_cookies([{"name": "_token", "value": token, "url": stack.base}])
        page = context.new_page()
        external = []
        page.on("request", lambda req: external.append(req.url) if not req.url.startswith(stack.base) else None)
        page.goto(f"{stack.base}/payouts/dashboard")
        assert page.locator("h1").inner_text() == "Payouts"
        funnel = page.locator("#funnel")
        assert funnel.locator('text.value[data-label="snapshotted"]').text_content() != "0"
        assert page.locator("#runs").inner_text().count(STATE["run_id"]) == 1
        # The run's batches show their real status and answers, not "planned".
        rows = page.locator("#batches tbody tr").filter(has_text=STATE["run_id"])
        assert rows.count() == len(STATE["batches"])
        for i in range(rows.count()):
            cells = rows.nth(i).locator("td").all_inner_texts()
            assert cells[7] == "done", cells
            assert int(cells[4]) >= 1 and cells[6] == "0", cells
        assert "planned" not in page.locator("#batches").inner_text()
        link = page.locator("#batches a").first.get_attribute("href")
        assert link.startswith(f"/dags/payout_run/runs/{STATE['dag_run_id']}/tasks/submit_") and "/mapped/" in link
        assert page.locator("#money-EUR").count() == 1
        assert page.locator("#recon-rate").count() == 1 and page.locator("#break-ageing").count() == 1
        page.screenshot(path=str(ARTIFACTS / "console-dashboard.png"), full_page=True)
        assert external == [], f"the page loaded something from elsewhere: {external}"
        # The Airflow UI lists the dashboard in its navigation (external_views) and frames it.
        plugins = stack.client("viewer").get("/api/v2/plugins").json()
        views = [v for pl in plugins["plugins"] for v in pl.get("external_views", [])]
        assert any(v["href"] == "/payouts/dashboard" for v in views)
        page.goto(f"{stack.base}/plugin/payouts")
        frame = page.frame_locator("iframe").first
        frame.locator("h1").wait_for(timeout=30_000)
        assert frame.locator("h1").inner_text() == "Payouts"
        page.screenshot(path=str(ARTIFACTS / "console-in-airflow-ui.png"))
        browser.close()


def test_report_timings():
    print(f"\nconsole timings: {STATE}")
