"""Where fetched statement files are kept: one folder per provider connection under
`PAYOUTS_STATEMENTS_URL`, through Airflow's `ObjectStoragePath`.

The default is a `file://` folder under the data folder; a deployment points it at
`s3://`, `gs://` or any fsspec store Airflow knows (a connection id may ride in the URL,
`s3://aws_default@bucket/statements`), so workers on different machines share no volume.
Files are written once under their provider's name and never changed; loading reads
them back (a remote file through a local copy that lasts the load) and knows them by
their hash.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from payouts import settings


def root():
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(settings.statements_url())


def is_local() -> bool:
    return root().protocol in ("file", "local")


def folder(provider: str):
    return root() / provider


def providers() -> list[str]:
    """The providers whose statement files are kept."""
    top = root()
    return sorted(p.name for p in top.iterdir() if p.is_dir()) if top.exists() else []


def files(provider: str) -> list[str]:
    """The URLs of a provider's files, by name (loading skips the ones already loaded)."""
    where = folder(provider)
    if not where.exists():
        return []
    return [str(p) for p in sorted((p for p in where.rglob("*") if p.is_file()), key=lambda p: str(p))]


@contextmanager
def fetch_folder(provider: str) -> Iterator[tuple[Path, Callable[[Path], str]]]:
    """A local folder a connector downloads into, and `keep(path) -> URL` to file each download.

    A `file://` store is written in place; another store gets each file uploaded from a
    temporary folder that is gone afterwards.
    """
    if is_local():
        target = Path(folder(provider).path)
        target.mkdir(parents=True, exist_ok=True)
        yield target, lambda path: str(folder(provider) / Path(path).relative_to(target).as_posix())
        return
    with tempfile.TemporaryDirectory(prefix="payouts-statements-") as tmp:
        target = Path(tmp)

        def keep(path: Path) -> str:
            dest = folder(provider) / Path(path).relative_to(target).as_posix()
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "rb") as source, dest.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
            return str(dest)

        yield target, keep


def _local_path(url: str) -> Path | None:
    """The local file of a `file://` URL or a plain path; None for another store."""
    if "://" not in url:
        return Path(url)
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(url)
    return Path(path.path) if path.protocol in ("file", "local") else None


@contextmanager
def local_copies(urls: list[str]) -> Iterator[dict[str, str]]:
    """url -> a local file with its bytes, for the duration of the block."""
    from airflow.sdk import ObjectStoragePath

    local: dict[str, str] = {}
    remote = []
    for url in urls:
        path = _local_path(url)
        if path is None:
            remote.append(url)
        else:
            local[url] = str(path)
    if not remote:
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="payouts-statements-") as tmp:
        for n, url in enumerate(remote):
            source = ObjectStoragePath(url)
            dest = Path(tmp) / f"{n:06d}-{source.name}"
            with source.open("rb") as handle, open(dest, "wb") as sink:
                shutil.copyfileobj(handle, sink, 1 << 20)
            local[url] = str(dest)
        yield local


def copy_all(dest: Path) -> int:
    """Copy every statement file kept into `dest/<provider>/` (for `payouts run --out`)."""
    n = 0
    for provider in providers():
        urls = files(provider)
        (dest / provider).mkdir(parents=True, exist_ok=True)
        with local_copies(urls) as local:
            for url in urls:
                shutil.copy2(local[url], dest / provider / url.rsplit("/", 1)[-1])
                n += 1
    return n
