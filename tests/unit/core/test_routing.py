import polars as pl
from polars.testing import assert_frame_equal

from payouts.core.routing import QUEUES, RAILS, route_frame


def test_routes_from_the_table():
    items = pl.DataFrame({
        "item_id": ["a", "b", "c", "d", "e", "f", "g"],
        "dest_kind": ["iban", "iban", "local", "iban", "wallet", "local", "iban"],
        "currency": ["EUR", "EUR", "USD", "GBP", "USDC", "INR", "CHF"],
        "country": ["DE", "TR", "US", "GB", "BR", "IN", "CH"],
    })
    routed = route_frame(items)
    assert routed["rail"].to_list() == ["sepa_instant", "swift", "ach", "faster_payments", "crypto", "swift", "swift"]


def test_routing_is_deterministic():
    items = pl.DataFrame({"item_id": [str(i) for i in range(50)], "dest_kind": ["iban"] * 50,
                          "currency": ["EUR", "PLN"] * 25, "country": ["FR", "PL"] * 25})
    assert_frame_equal(route_frame(items), route_frame(items.clone()))


def test_every_rail_has_a_queue():
    assert set(QUEUES) == {"sepa", "swift", "local", "crypto"}
    assert all(r.queue in QUEUES for r in RAILS.values())
