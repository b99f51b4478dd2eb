"""The console: a FastAPI app mounted in Airflow's api-server by plugins/payouts_plugin.py.

- app.py: the app (API under /api/v1, the dashboard page, static assets), guarded by Airflow's auth
- api.py: the JSON/CSV API
- intake.py: payout files and API requests -> checked rows -> ledger payables -> a run
- airflow_api.py: triggering payout_run and reading its state from inside the api-server
- views.py: the read queries; charts.py: server-side SVG; the dashboard HTML is rendered by app.py
"""
