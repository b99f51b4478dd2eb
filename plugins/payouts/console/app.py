"""The console app that payouts_plugin.py mounts at /payouts in Airflow's api-server.

- /payouts/api/v1/...   the API (api.py), OpenAPI at /payouts/openapi.json, docs at /payouts/docs
- /payouts/dashboard    the dashboard page (linked in the Airflow nav through external_views)
- /payouts/static/...   its stylesheet

Nothing here is open: every route depends on Airflow's security dependencies.
The dashboard sends a browser without a session to Airflow's login page.
"""

from __future__ import annotations

from html import escape

from payouts.core.routing import RAILS
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag

from payouts.console import airflow_api, api, charts, views

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/payouts"


def create_app() -> FastAPI:
    app = FastAPI(title="Payouts console", version="1",
                  description="Payout files and runs in; runs, items, reconciliation and breaks out. "
                              "Authenticate with a JWT from POST /auth/token (Bearer) or the Airflow UI session.")
    app.include_router(api.router)

    @app.exception_handler(HTTPException)
    async def to_login(request: Request, exc: HTTPException):
        from fastapi.exception_handlers import http_exception_handler

        wants_page = request.url.path.rstrip("/").endswith("/dashboard") and "text/html" in request.headers.get(
            "accept", "")
        if exc.status_code == 401 and wants_page:
            return RedirectResponse(f"/auth/login/?next={quote(str(request.url))}", status_code=303)
        return await http_exception_handler(request, exc)

    read = [Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=airflow_api.DAG_ID))]

    @app.get("/static/{name}", dependencies=read, include_in_schema=False)
    def static(name: str):
        path = (STATIC / name).resolve()
        if path.parent != STATIC or not path.is_file():
            raise HTTPException(404, "no such asset")
        return FileResponse(path, headers={"Cache-Control": "private, max-age=300"})

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse(f"{PREFIX}/dashboard", status_code=307)

    @app.get("/dashboard", response_class=HTMLResponse, dependencies=read, summary="The dashboard page")
    def dashboard():
        with api.warehouse() as conn:
            return HTMLResponse(render_dashboard(conn))

    return app


def _table(headers: list[str], rows: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr><td colspan="{len(headers)}" class="muted">nothing yet</td></tr>'
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _link(path: str, text: str) -> str:
    # Airflow UI routes, absolute from the site root; target=_top leaves the nav iframe.
    return f'<a href="/{escape(path)}" target="_top">{escape(text)}</a>'


def _stop_button(action: str, scope: str, target: str) -> str:
    label = f"{'Stop' if action == 'stop' else 'Lift'} {scope} {target}"
    return (f'<button type="button" data-stop="{action}" data-scope="{escape(scope)}"'
            f' data-target="{escape(target)}">{escape(label)}</button>')


def render_dashboard(conn) -> str:
    funnel = views.funnel(conn)
    by_country = views.failures_by(conn, "country")
    by_rail = views.failures_by(conn, "rail")
    money_out = views.money_out_by_day(conn)
    rate, rate_series = views.reconciliation_rate(conn)
    ageing = views.break_ageing(conn)
    runs = views.list_runs(conn, limit=15)
    states = airflow_api.dag_run_states([r["dag_run_id"] for r in runs])
    batches = views.batches(conn, [r["run_id"] for r in runs[:5]])

    money_charts = []
    for i, (currency, series) in enumerate(sorted(money_out.items(), key=lambda kv: -len(kv[1]))[:6]):
        money_charts.append(charts.columns(
            [(d.isoformat(), float(v)) for d, v in series], f"Money out, {currency}",
            colour=charts.PALETTE[i % len(charts.PALETTE)], width=300, height=130,
            fmt=lambda v, c=currency: f"{v:,.2f} {c}", chart_id=f"money-{currency}"))
    run_rows = []
    for r in runs:
        status = views.run_status(r, states.get(r["dag_run_id"]))
        run_rows.append([
            escape(r["run_id"]), _link(f"dags/payout_run/runs/{r['dag_run_id']}", r["dag_run_id"]),
            f'<span class="status s-{escape(status)}">{escape(status)}</span>', f"{r['items']:,}",
            escape(r["trigger"]), escape(r["created_by"] or ""),
            escape(f"{r['approval_decision'] or ''} {r['approved_by'] or ''}".strip()),
            escape(f"{r['created_at']:%Y-%m-%d %H:%M}")])
    batch_rows = [[escape(b["run_id"]), escape(b["rail"]), str(b["batch_no"]), f"{b['item_count']:,}",
                   f"{b['accepted']:,}", f"{b['rejected']:,}", f"{b['unanswered']:,}",
                   f'<span class="status s-{escape(b["status"])}" title="{escape(b["detail"] or "")}">'
                   f'{escape(b["status"])}</span>',
                   _link(b["airflow_path"], f"{b['task_id']}[{b['map_index']}]")] for b in batches]
    stops = conn.execute(
        "SELECT scope, target, kind, reason, set_by, set_at FROM payouts.stops WHERE lifted_at IS NULL"
        " ORDER BY set_at DESC").fetchall()
    stop_rows = [[escape(scope), escape(target), escape(kind), escape(reason), escape(by),
                  escape(f"{at:%Y-%m-%d %H:%M}"),
                  _stop_button("lift", scope, target) if kind == "kill" else ""]
                 for scope, target, kind, reason, by, at in stops]
    stop_buttons = " ".join(_stop_button("stop", "rail", rail) for rail in sorted(RAILS)) + " " + " ".join(
        _stop_button("stop", "run", r["run_id"]) for r in runs[:3])
    rate_chart = charts.columns([(d.isoformat(), s * 100) for d, s in rate_series], "Reconciled per day (%)",
                                colour="#16a34a", width=300, height=130, fmt=lambda v: f"{v:.1f}%",
                                chart_id="recon-daily")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Payouts dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{PREFIX}/static/console.css"></head>
<body>
<header><h1>Payouts</h1>
<nav><a href="{PREFIX}/docs" target="_blank">API</a> · <a href="{PREFIX}/api/v1/runs?format=csv">runs.csv</a>
 · <a href="{PREFIX}/api/v1/breaks?format=csv">open breaks.csv</a></nav></header>
<section class="grid">
  <div class="card" id="funnel-card"><h2>Run funnel (all runs)</h2>
    {charts.hbars(funnel, "Items by stage", charts.STATUS_COLOURS, chart_id="funnel")}</div>
  <div class="card"><h2>Failures</h2>
    {charts.hbars(by_country, "Failed by country", chart_id="fail-country")}
    {charts.hbars(by_rail, "Failed by rail", chart_id="fail-rail")}</div>
  <div class="card" id="recon-card"><h2>Reconciliation</h2>
    {charts.gauge(rate, "Reconciled (30 days)", chart_id="recon-rate")}{rate_chart}
    {charts.hbars(ageing, "Open breaks by age", {b: "#dc2626" for b, _ in ageing}, chart_id="break-ageing")}</div>
</section>
<section class="card"><h2>Money out by currency</h2><div class="row">{''.join(money_charts) or
    '<p class="muted">nothing paid out yet</p>'}</div></section>
<section class="card"><h2>Recent runs</h2>
{_table(["run", "Airflow DAG run", "status", "items", "trigger", "created by", "approval", "created"],
        run_rows, "runs")}</section>
<section class="card" id="kill-switch"><h2>Kill switch</h2>
<p class="muted">Stops new submissions at once; what is queued is cancelled and its money goes back to
payable. Every stop and lift is recorded with who and when.</p>
<p>{stop_buttons}</p>
{_table(["scope", "target", "kind", "reason", "set by", "set at", ""], stop_rows, "stops")}
<script>
for (const b of document.querySelectorAll("button[data-stop]")) {{
  b.addEventListener("click", async () => {{
    const {{stop, scope, target}} = b.dataset;
    let r;
    if (stop === "stop") {{
      const reason = prompt(`Why stop ${{scope}} ${{target}}?`);
      if (!reason) return;
      r = await fetch("{PREFIX}/api/v1/stops", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                       body: JSON.stringify({{scope, target, reason}})}});
    }} else {{
      r = await fetch(`{PREFIX}/api/v1/stops/${{scope}}/${{encodeURIComponent(target)}}`, {{method: "DELETE"}});
    }}
    if (!r.ok) alert(`${{r.status}}: ${{await r.text()}}`);
    location.reload();
  }});
}}
</script></section>
<section class="card"><h2>Batches of the last runs</h2>
{_table(["run", "rail", "batch", "items", "accepted", "rejected", "unanswered", "status", "Airflow task"],
        batch_rows, "batches")}</section>
</body></html>"""


app = create_app()
