"""Fixtures for provider tests: the camt.053.001.08 schema from the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_XSD = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "xsd"


@pytest.fixture(scope="session")
def camt053_schema():
    from lxml import etree

    path = SHARED_XSD / "camt.053.001.08.xsd"
    if not path.exists():
        pytest.fail(f"the camt.053.001.08 schema is missing at {path}")
    return etree.XMLSchema(etree.parse(str(path)))
