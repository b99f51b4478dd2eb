"""The statement store: files kept per provider under PAYOUTS_STATEMENTS_URL through Airflow's
ObjectStoragePath, whatever the store (a file:// folder, or fsspec's in-memory store standing
for a bucket: the same code path as s3:// or gs://, a download for each load)."""

from __future__ import annotations

from pathlib import Path

import pytest

from payouts.reconcile import run as recon
from payouts.reconcile import store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "camt"


class FolderConnector:
    """A provider whose statements are the camt fixtures, paged by name."""

    def __init__(self, names: list[str]):
        self.names = names

    def fetch_statements(self, cursor, dest: Path):
        from payouts.providers.contract import StatementPage

        todo = [n for n in self.names if cursor is None or n > cursor]
        files = []
        for name in todo:
            (dest / name).write_bytes((FIXTURES / name).read_bytes())
            files.append(dest / name)
        return StatementPage(files=files, cursor=todo[-1] if todo else cursor)


@pytest.fixture(params=["file", "memory"])
def statements_url(request, tmp_path, monkeypatch):
    if request.param == "memory":
        # fsspec's in-memory filesystem attached as Airflow attaches a provider's (s3, gcs, ...).
        from airflow.sdk.io import attach
        from fsspec.implementations.memory import MemoryFileSystem

        attach("memory", fs=MemoryFileSystem())
    url = (tmp_path / "store").as_uri() if request.param == "file" else f"memory://bucket-{tmp_path.name}/statements"
    monkeypatch.setenv("PAYOUTS_STATEMENTS_URL", url)
    monkeypatch.setenv("PAYOUTS_DATA_DIR", str(tmp_path / "data"))
    return url


def test_fetched_files_are_kept_in_the_store_and_read_back(statements_url, tmp_path):
    names = sorted(p.name for p in FIXTURES.glob("*.xml"))[:2]
    assert len(names) == 2, "the camt fixtures are missing"

    with store.fetch_folder("bank_eu") as (target, keep):
        page = FolderConnector(names).fetch_statements(None, target)
        urls = [keep(Path(p)) for p in page.files]

    assert urls == [f"{statements_url}/bank_eu/{n}" for n in names]
    assert store.providers() == ["bank_eu"]
    assert store.files("bank_eu") == urls
    assert recon.pending_files("bank_eu") == urls
    with store.local_copies(urls) as local:
        assert [Path(local[u]).read_bytes() for u in urls] == [(FIXTURES / n).read_bytes() for n in names]
    assert store.copy_all(tmp_path / "out") == 2
    assert sorted(p.name for p in (tmp_path / "out" / "bank_eu").iterdir()) == names
    assert not (tmp_path / "data" / "statements").exists()
