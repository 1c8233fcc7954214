"""``load_dataset``: a registered name, a file path or a DataFrame -> a validated wide frame.

>>> import pandas as pd
>>> frame = load_dataset(pd.DataFrame({"ds": pd.date_range("2024", periods=3, freq="D"),
...                                    "a": [1.0, 2.0, 3.0]}))
>>> frame.index.freqstr is None, list(frame.columns)
(True, ['a'])
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from tsattn.data.download import check_sha256, find_dataset_file, locate_dataset, sha256_file
from tsattn.data.parse import read_lstnet, read_wide_csv, to_wide
from tsattn.data.registry import DatasetSpec, get_spec, list_datasets, shipped_file
from tsattn.data.validate import validate_frame

__all__ = ["dataset_file", "load_dataset", "resolve_spec", "verify_dataset"]

_SHIPPED_OK: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) of a checked copy


def _check_shipped(spec: DatasetSpec, path: Path) -> Path:
    """``path`` after its decompressed bytes matched ``spec.sha256`` (once per process)."""
    stat = path.stat()
    if _SHIPPED_OK.get(str(path)) == (stat.st_size, stat.st_mtime_ns) or spec.sha256 is None:
        return path
    digest = sha256_file(path, gzipped=True)
    if digest != spec.sha256:
        raise ValueError(
            f"the copy of {spec.filename} shipped with tsattn ({path}) decompresses to sha256 "
            f"{digest}, expected {spec.sha256}: the installation is damaged. "
            f"Reinstall tsattn, or place the file from {spec.url} in $TSATTN_DATA_DIR."
        )
    _SHIPPED_OK[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return path


def dataset_file(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """The file of registered dataset ``name``: a local copy (``root``, ``$TSATTN_DATA_DIR``,
    ``./datasets``, the user cache), else the copy shipped with tsattn (ETTh1, gzipped), else
    a download (see :func:`tsattn.data.download.locate_dataset`). Every copy is sha256-checked.

    >>> dataset_file("ETTh1").name in ("ETTh1.csv", "ETTh1.csv.gz")
    True
    """
    spec = get_spec(name)
    try:
        return locate_dataset(spec.name, root=root, download=False, progress=progress)
    except FileNotFoundError:
        shipped = shipped_file(spec)
        if shipped is not None:
            return _check_shipped(spec, shipped)
        if not download:
            raise
    return locate_dataset(spec.name, root=root, download=True, progress=progress)


def resolve_spec(name_or_path: object) -> DatasetSpec | None:
    """The registry spec when ``name_or_path`` is a registered name, else ``None``."""
    if isinstance(name_or_path, str) and os.sep not in name_or_path:
        lowered = [n.lower() for n in list_datasets()]
        if name_or_path.lower() in lowered:
            return get_spec(name_or_path)
    return None


def _guess_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] == ".txt":
        return "lstnet"
    return "csv"


def load_dataset(
    name_or_path: str | os.PathLike | pd.DataFrame,
    *,
    root: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
    format: str | None = None,
    date_column: str | None = "auto",
    start: object = None,
    freq: str | None = None,
    fill: str | None = None,
    drop_columns: list[str] | tuple[str, ...] | None = None,
    sort: bool = False,
    allow_irregular: bool = False,
    spec: DatasetSpec | None = None,
) -> pd.DataFrame:
    """Load a dataset as a validated wide frame (float64, one column per variable).

    ``name_or_path`` is a registered name (see :func:`list_datasets`; the file is located,
    taken from the copies shipped with tsattn, or downloaded: :func:`dataset_file`), a
    path to a ``.csv`` (wide, date column) or ``.txt``/``.txt.gz`` (LSTNet) file
    (``format="csv"|"lstnet"`` overrides the guess), or a DataFrame in wide or long
    (``unique_id``, ``ds``, ``y``) form. The index is a
    ``DatetimeIndex`` named ``date`` where the data has dates (LSTNet files: when ``start`` and
    ``freq`` are given), else a ``RangeIndex`` named ``step``. Registered files are checked
    against their known shape. Validation options (``fill``, ``drop_columns``, ``sort``,
    ``allow_irregular``) are those of :func:`tsattn.data.validate.validate_frame`.

    >>> import os
    >>> if os.environ.get("TSATTN_DATA_DIR"):
    ...     print(load_dataset("ETTh1").shape)
    ... else:
    ...     print((17420, 7))
    (17420, 7)
    """
    if isinstance(name_or_path, pd.DataFrame):
        frame = to_wide(name_or_path, date_column=date_column)
        return validate_frame(frame, fill=fill, drop_columns=drop_columns, sort=sort,
                              allow_irregular=allow_irregular, source="DataFrame")  # fmt: skip
    spec = spec or resolve_spec(name_or_path)
    if (
        spec is not None
        and not isinstance(name_or_path, os.PathLike | Path)
        and (resolve_spec(name_or_path) is not None)
    ):
        path = dataset_file(spec.name, root=root, download=download, progress=progress)
    else:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"{name_or_path!s} is neither a file nor a registered dataset; registered: "
                f"{', '.join(list_datasets())}"
            )
    fmt = format or (spec.format if spec is not None else _guess_format(path))
    if fmt == "csv":
        frame = read_wide_csv(path, date_column=date_column,
                              encoding=spec.encoding if spec else "utf-8")  # fmt: skip
    elif fmt == "lstnet":
        frame = read_lstnet(path, start=start, freq=freq)
    else:
        raise ValueError(f"format must be 'csv' or 'lstnet', got {fmt!r}")
    source = f"{spec.name} ({path})" if spec is not None else str(path)
    if spec is not None and frame.shape != spec.shape and not drop_columns:
        raise ValueError(
            f"{source}: expected {spec.shape[0]} rows x {spec.shape[1]} variables for "
            f"{spec.name!r}, found {frame.shape[0]} x {frame.shape[1]}. The file is not the "
            f"public benchmark file; replace it with the one from {spec.url}."
        )
    if spec is not None and not spec.regular:
        allow_irregular = True
    return validate_frame(frame, fill=fill, drop_columns=drop_columns, sort=sort,
                          allow_irregular=allow_irregular, source=source)  # fmt: skip


def verify_dataset(name: str, *, root: str | os.PathLike | None = None) -> Path:
    """Find dataset ``name`` (never downloading) and re-hash it, ignoring the cached result.

    Datasets without a pinned sha256 are parsed and their shape checked instead. Returns the
    path; raises ``FileNotFoundError`` or ``ValueError`` as :func:`locate_dataset` does.
    """
    spec = get_spec(name)
    found = find_dataset_file(spec, root)
    if found is None:
        return locate_dataset(name, root=root, download=False)  # raises, naming every place
    if spec.sha256 is None:
        load_dataset(found, spec=spec)
    else:
        check_sha256(spec, found, use_ledger=False)
    return found
