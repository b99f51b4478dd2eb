"""The payouts plugin: the console (a FastAPI app at /payouts) and its link in the Airflow navigation.

plugins/.airflowignore keeps Airflow from importing the payouts package file by
file; this module is the only plugin entry. The app's routes are guarded by
Airflow's own auth (payouts/console/app.py).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


def _fastapi_apps() -> list[dict]:
    try:
        from payouts.console.app import app
    except ImportError as exc:  # a process without the api-server's extras: no console, nothing else breaks
        import logging

        logging.getLogger(__name__).warning("payouts console not loaded: %s", exc)
        return []
    return [{"app": app, "url_prefix": "/payouts", "name": "Payouts console"}]


class PayoutsPlugin(AirflowPlugin):
    name = "payouts"
    fastapi_apps = _fastapi_apps()
    external_views = [
        {
            "name": "Payouts",
            "href": "/payouts/dashboard",
            "destination": "nav",
            "url_route": "payouts",  # shown inside the Airflow UI at /plugin/payouts
            "category": "browse",
        }
    ]
