"""docs/provider-api.yaml is the generic connector's contract: it names every route the
sandbox serves, and every request the generic connector makes is one of its routes."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from payouts.core.rails import RAILS

PROJECT = Path(__file__).resolve().parents[3]
CONTRACT = yaml.safe_load((PROJECT / "docs" / "provider-api.yaml").read_text())


def _served_routes(tmp_path) -> set[tuple[str, str]]:
    from payouts_sandbox.app import create_app

    app = create_app(state_dir=tmp_path)
    routes = set()
    for route in app.routes:
        path = getattr(route, "path", "")
        if not path.startswith("/v1/"):
            continue
        for method in getattr(route, "methods", ()):
            routes.add((method.lower(), re.sub(r":path}", "}", path)))
    return routes


def _documented() -> set[tuple[str, str]]:
    return {(method, path) for path, ops in CONTRACT["paths"].items() for method in ops if method != "x-sandbox-only"}


def test_the_contract_names_every_route_the_sandbox_serves(tmp_path):
    assert CONTRACT["openapi"].startswith("3.")
    assert _served_routes(tmp_path) == _documented()


def test_every_request_of_the_generic_connector_is_in_the_contract():
    source = (PROJECT / "plugins" / "payouts" / "providers" / "generic" / "connector.py").read_text()
    used = set(re.findall(r'"(/v1/[^"?]*)"', source)) | {
        re.sub(r"\{[^}]*\}", "{x}", p) for p in re.findall(r'f"(?:\{self\.base_url\})?(/v1/[^"]*)"', source)}
    documented = {re.sub(r"\{[^}]*\}", "{x}", p) for p in CONTRACT["paths"]}
    used = {re.sub(r"\{[^}]*\}", "{x}", p) for p in used}
    assert used and used <= documented, used - documented
    sandbox_only = {p for p, ops in CONTRACT["paths"].items() if ops.get("x-sandbox-only")}
    assert sandbox_only == {"/v1/clock/advance", "/v1/executions"}


def test_the_contract_rails_and_answers_are_the_projects():
    schemas = CONTRACT["components"]["schemas"]
    assert schemas["Rail"]["enum"] == list(RAILS)
    assert set(schemas["PaymentResult"]["properties"]["status"]["enum"]) == {"accepted", "rejected", "conflict",
                                                                            "pending"}
