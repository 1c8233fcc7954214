"""Locate a dataset file on disk, or download it with a progress bar and a sha256 check.

Search order for a registered dataset: the explicit ``root`` folder, ``$TSATTN_DATA_DIR``,
``./datasets`` (relative to the working directory), then the user cache
(``$TSATTN_CACHE_DIR``, default ``~/.cache/tsattn``). When none holds the file it is
downloaded into the cache (or ``root``): streamed to a temporary ``.part`` file in the target
folder, hashed while it streams (after decompression for ``.gz`` URLs), and renamed into place
only when complete and matching the pinned sha256. An interrupted or corrupted download never
leaves a file under the real name.

A located file with a pinned sha256 is always checked. To avoid hashing large files on every
load, a successful check is remembered in ``<cache>/verified.json`` keyed by the absolute path
together with the file's size and modification time (ns); any change of either triggers a new
hash. :func:`tsattn.data.loader.verify_dataset` always re-hashes.

>>> [label for label, _ in search_paths()][-2:]
['./datasets', 'user cache']
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from tqdm.auto import tqdm

from tsattn.data.registry import DatasetSpec, get_spec, list_datasets

__all__ = [
    "cache_dir",
    "check_sha256",
    "dataset_status",
    "download_dataset",
    "find_dataset_file",
    "locate_dataset",
    "search_paths",
    "sha256_file",
]

_CHUNK = 1 << 20
_VERIFIED: dict[str, tuple[int, int, str]] = {}


def cache_dir() -> Path:
    """The user cache folder: ``$TSATTN_CACHE_DIR`` or ``~/.cache/tsattn``."""
    raw = os.environ.get("TSATTN_CACHE_DIR")
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "tsattn"


def search_paths(root: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The folders searched for dataset files, in order, as ``(label, folder)`` pairs."""
    places: list[tuple[str, Path]] = []
    if root is not None:
        places.append(("root argument", Path(root).expanduser()))
    env = os.environ.get("TSATTN_DATA_DIR")
    if env:
        places.append(("$TSATTN_DATA_DIR", Path(env).expanduser()))
    places.append(("./datasets", Path.cwd() / "datasets"))
    places.append(("user cache", cache_dir()))
    return places


def sha256_file(path: str | os.PathLike, *, gzipped: bool = False) -> str:
    """Hex sha256 of a file (of its decompressed bytes when ``gzipped``), in 1 MiB chunks."""
    digest = hashlib.sha256()
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _ledger_path() -> Path:
    return cache_dir() / "verified.json"


def _load_ledger() -> dict[str, list]:
    try:
        return json.loads(_ledger_path().read_text())
    except (OSError, ValueError):
        return {}


def _remember(path: Path, digest: str) -> None:
    stat = path.stat()
    key = str(path.resolve())
    _VERIFIED[key] = (stat.st_size, stat.st_mtime_ns, digest)
    ledger = _load_ledger()
    ledger[key] = [stat.st_size, stat.st_mtime_ns, digest]
    try:  # best effort: a read-only home only costs a re-hash next time
        target = _ledger_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix="verified.", suffix=".part")
        with os.fdopen(fd, "w") as handle:
            json.dump(ledger, handle)
        os.replace(tmp, target)
    except OSError:
        pass


def _known_digest(path: Path) -> str | None:
    """The digest recorded for ``path`` if its size and mtime are unchanged since."""
    stat = path.stat()
    key = str(path.resolve())
    entry = _VERIFIED.get(key) or tuple(_load_ledger().get(key, ())) or None
    if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
        return str(entry[2])
    return None


def _manual_hint(spec: DatasetSpec, places: list[tuple[str, Path]]) -> str:
    gz = " and decompress it (gunzip)" if spec.url.endswith(".gz") else ""
    first = places[0][1] / spec.filename
    return (
        f"To place it by hand: download {spec.url}{gz}, save it as {first} "
        "(or in any folder above), or set TSATTN_DATA_DIR to the folder that holds "
        f"{spec.filename}."
    )


def check_sha256(spec: DatasetSpec, path: Path, *, use_ledger: bool = True) -> None:
    """``ValueError`` unless ``path`` has ``spec``'s pinned sha256 (nothing to check without one).

    ``use_ledger=False`` re-hashes even a file whose digest is remembered.
    """
    if spec.sha256 is None:
        return
    digest = _known_digest(path) if use_ledger else None
    if digest is None:
        digest = sha256_file(path)
    if digest != spec.sha256:
        raise ValueError(
            f"checksum mismatch for {spec.name!r}: {path} has sha256 {digest}, expected "
            f"{spec.sha256}. The file is corrupted or a different version; it was not used. "
            f"Delete it and run tsattn.data.download_dataset({spec.name!r}, force=True), or "
            f"replace it with the file from {spec.url}"
            + (" (gunzipped)." if spec.url.endswith(".gz") else ".")
        )
    _remember(path, digest)


def _fetch(url: str, dest: Path, sha256: str | None, *, progress: bool, label: str) -> None:
    """Stream ``url`` into ``dest`` atomically, decompressing ``.gz`` and checking sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if url.endswith(".gz") else None
        received = 0
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(url, timeout=60) as response,
        ):
            total = response.headers.get("Content-Length")
            total = int(total) if total is not None else None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=label, disable=not progress
            ) as bar:
                while chunk := response.read(_CHUNK):
                    received += len(chunk)
                    bar.update(len(chunk))
                    if inflate is not None:
                        chunk = inflate.decompress(chunk)
                    digest.update(chunk)
                    out.write(chunk)
            if inflate is not None:
                tail = inflate.flush()
                digest.update(tail)
                out.write(tail)
                if not inflate.eof:
                    raise OSError(f"the gzip stream from {url} ended early (truncated download)")
        if total is not None and received != total:
            raise OSError(f"download of {url} stopped after {received} of {total} bytes")
        got = digest.hexdigest()
        if sha256 is not None and got != sha256:
            raise ValueError(
                f"checksum mismatch for the download of {dest.name} from {url}: sha256 {got}, "
                f"expected {sha256}. Nothing was saved. The server may serve another version; "
                f"place a verified copy by hand at {dest}."
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def find_dataset_file(spec: DatasetSpec, root: str | os.PathLike | None = None) -> Path | None:
    """The first copy of ``spec``'s file in :func:`search_paths`, unchecked; ``None`` if none."""
    for _, folder in search_paths(root):
        candidate = folder / spec.filename
        if candidate.is_file():
            return candidate
    return None


def _download(
    spec: DatasetSpec,
    root: str | os.PathLike | None,
    *,
    progress: bool,
    context: str,
    places: list[tuple[str, Path]],
) -> Path:
    """Fetch ``spec`` into ``root`` (default: the user cache), checked and remembered.

    A failed download raises ``FileNotFoundError``: ``context``, then what failed, then how to
    place the file by hand in one of ``places``.
    """
    folder = Path(root).expanduser() if root is not None else cache_dir()
    dest = folder / spec.filename
    try:
        _fetch(spec.url, dest, spec.sha256, progress=progress, label=spec.filename)
    except (urllib.error.URLError, OSError) as error:
        raise FileNotFoundError(
            f"{context}Downloading {spec.url} to {dest} failed ({error}).\n"
            + _manual_hint(spec, places)
        ) from error
    if spec.sha256 is not None:
        _remember(dest, spec.sha256)
    return dest


def locate_dataset(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """Path to the verified file of registered dataset ``name``, downloading it if needed.

    Raises ``FileNotFoundError`` (naming the file, every folder searched, the URL and how to
    place the file by hand) when it is nowhere and cannot be downloaded, and ``ValueError``
    when a found file fails its sha256 check (a corrupted file is never used).

    >>> import os
    >>> locate_dataset("ETTh1").name if os.environ.get("TSATTN_DATA_DIR") else "ETTh1.csv"
    'ETTh1.csv'
    """
    spec = get_spec(name)
    found = find_dataset_file(spec, root)
    if found is not None:
        check_sha256(spec, found)
        return found
    places = search_paths(root)
    searched = "\n".join(f"  - {label}: {folder / spec.filename}" for label, folder in places)
    head = f"dataset {spec.name!r}: file {spec.filename} not found. Searched:\n{searched}\n"
    if not download:
        raise FileNotFoundError(
            head
            + f"download=False, so it was not fetched from {spec.url}.\n"
            + _manual_hint(spec, places)
        )
    return _download(spec, root, progress=progress, context=head, places=places)


def download_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    force: bool = False,
    *,
    progress: bool = True,
) -> Path:
    """Download dataset ``name`` into ``root`` (default: the user cache) and return its path.

    An existing verified copy in ``root`` is kept unless ``force=True``.
    """
    spec = get_spec(name)
    folder = Path(root).expanduser() if root is not None else cache_dir()
    dest = folder / spec.filename
    if dest.is_file() and not force:
        check_sha256(spec, dest)
        return dest
    return _download(
        spec, root, progress=progress, context=f"dataset {spec.name!r}: ", places=[("root", folder)]
    )


def dataset_status(root: str | os.PathLike | None = None) -> list[dict[str, object]]:
    """One row per registered dataset: name, file, path found (or None), sha256 pinned, url.

    Nothing is hashed or downloaded; use :func:`tsattn.data.verify_dataset` for a full check.
    """
    rows = []
    for name in list_datasets():
        spec = get_spec(name)
        rows.append(
            dict(name=name, file=spec.filename, path=find_dataset_file(spec, root),
                 pinned=spec.sha256 is not None, url=spec.url)
        )  # fmt: skip
    return rows
