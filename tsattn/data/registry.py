"""Registry of the public multivariate benchmark datasets.

A :class:`DatasetSpec` says where a file lives on the internet, how to check it (sha256 where
known, otherwise the expected shape), how to parse it and which benchmark protocol it is
reported under (see ``PROTOCOLS.md``).

>>> get_spec("ETTh1").shape
(17420, 7)
>>> "exchange_rate" in list_datasets()
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["BUILTIN_DIR", "DatasetSpec", "get_spec", "list_datasets", "register_dataset",
           "shipped_file"]  # fmt: skip

# Compressed copies of small datasets shipped inside the package, with their licences
# (README.md there): found after the local search places and before a download.
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"

_ETT = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/"
_LSTNET = "https://raw.githubusercontent.com/laiguokun/multivariate-time-series-data/master/"
_TSLIB = "https://huggingface.co/datasets/thuml/Time-Series-Library/resolve/main/"


@dataclass(frozen=True)
class DatasetSpec:
    """How to find, check and parse one public dataset file.

    Attributes:
        name: registry key, e.g. ``"ETTh1"``.
        filename: the file name looked for on disk, e.g. ``"ETTh1.csv"``.
        url: public home of the file. A ``.gz`` URL is decompressed while downloading.
        sha256: sha256 of the (decompressed) file, or ``None`` where not pinned.
        freq: pandas frequency of one step (``"h"``, ``"15min"``, ``"D"``, ...).
        format: ``"csv"`` (wide CSV with a ``date`` column) or ``"lstnet"`` (no header, no dates).
        protocol: default benchmark protocol, ``"tslib"`` or ``"mtgnn"``.
        split: ``"ett_hour"``, ``"ett_minute"`` (fixed month borders) or ``"ratio"`` for the
            ``tslib`` protocol; the ``mtgnn`` protocol always splits 60/20/20.
        shape: ``(rows, variables)`` of the real file; a located file of another shape is rejected.
        encoding: text encoding tried first (``latin-1`` is the fallback for every file).
        regular: ``False`` when the published file has known timestamp defects that the
            protocol keeps (it counts rows): weather.csv repeats 2020-05-12 06:00 and skips the
            next step. Such files load with ``allow_irregular=True``.
    """

    name: str
    filename: str
    url: str
    sha256: str | None
    freq: str
    format: str
    protocol: str
    split: str
    shape: tuple[int, int]
    encoding: str = "utf-8"
    regular: bool = True


_SPECS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec, *, overwrite: bool = False) -> None:
    """Add ``spec`` to the registry (``overwrite=True`` replaces an entry with the same name).

    >>> spec = DatasetSpec("toy", "toy.csv", "file:///tmp/toy.csv", None, "h", "csv",
    ...                    "tslib", "ratio", (100, 2))
    >>> register_dataset(spec, overwrite=True); get_spec("toy").filename
    'toy.csv'
    """
    if spec.format not in ("csv", "lstnet"):
        raise ValueError(f"DatasetSpec.format must be 'csv' or 'lstnet', got {spec.format!r}")
    if spec.protocol not in ("tslib", "mtgnn"):
        raise ValueError(f"DatasetSpec.protocol must be 'tslib' or 'mtgnn', got {spec.protocol!r}")
    if spec.split not in ("ett_hour", "ett_minute", "ratio"):
        raise ValueError(
            f"DatasetSpec.split must be 'ett_hour', 'ett_minute' or 'ratio', got {spec.split!r}"
        )
    if spec.name in _SPECS and not overwrite:
        raise ValueError(f"dataset {spec.name!r} is already registered; pass overwrite=True")
    _SPECS[spec.name] = spec


def list_datasets() -> list[str]:
    """Names of the registered datasets, in registry order.

    >>> list_datasets()[:4]
    ['ETTh1', 'ETTh2', 'ETTm1', 'ETTm2']
    """
    return list(_SPECS)


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` registered under ``name`` (case-insensitive).

    >>> get_spec("etth1").name
    'ETTh1'
    """
    if name in _SPECS:
        return _SPECS[name]
    lowered = {key.lower(): spec for key, spec in _SPECS.items()}
    if name.lower() in lowered:
        return lowered[name.lower()]
    raise ValueError(
        f"unknown dataset {name!r}; registered datasets: {', '.join(_SPECS)}. "
        "Pass a file path or a DataFrame for your own data."
    )


def shipped_file(spec: DatasetSpec) -> Path | None:
    """The gzip copy of ``spec``'s file shipped with tsattn, or ``None`` when none is.

    >>> shipped_file(get_spec("ETTh1")).name
    'ETTh1.csv.gz'
    >>> shipped_file(get_spec("traffic")) is None
    True
    """
    path = BUILTIN_DIR / f"{spec.filename}.gz"
    return path if path.is_file() else None


for _spec in (
    DatasetSpec("ETTh1", "ETTh1.csv", _ETT + "ETTh1.csv",
                "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
                "h", "csv", "tslib", "ett_hour", (17420, 7)),
    DatasetSpec("ETTh2", "ETTh2.csv", _ETT + "ETTh2.csv",
                "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b",
                "h", "csv", "tslib", "ett_hour", (17420, 7)),
    DatasetSpec("ETTm1", "ETTm1.csv", _ETT + "ETTm1.csv",
                "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e",
                "15min", "csv", "tslib", "ett_minute", (69680, 7)),
    DatasetSpec("ETTm2", "ETTm2.csv", _ETT + "ETTm2.csv",
                "db973ca252c6410a30d0469b13d696cf919648d0f3fd588c60f03fdbdbadd1fd",
                "15min", "csv", "tslib", "ett_minute", (69680, 7)),
    DatasetSpec("electricity", "electricity.csv", _TSLIB + "electricity/electricity.csv", None,
                "h", "csv", "tslib", "ratio", (26304, 321)),
    DatasetSpec("weather", "weather.csv", _TSLIB + "weather/weather.csv",
                "34ee981d07313e51da2a50bb600072c8ae4a69cb4b0651f4cb93a069d7a2ba63",
                "10min", "csv", "tslib", "ratio", (52696, 21), regular=False),
    DatasetSpec("exchange_rate", "exchange_rate.txt",
                _LSTNET + "exchange_rate/exchange_rate.txt.gz",
                "0127465b51e3cd3c360f8eb2be30cfd294689a2a55903eb8245aafc396626c7f",
                "D", "lstnet", "mtgnn", "ratio", (7588, 8)),
    DatasetSpec("traffic", "traffic.csv", _TSLIB + "traffic/traffic.csv", None,
                "h", "csv", "tslib", "ratio", (17544, 862)),
    DatasetSpec("solar_AL", "solar_AL.txt", _LSTNET + "solar-energy/solar_AL.txt.gz", None,
                "10min", "lstnet", "mtgnn", "ratio", (52560, 137)),
    DatasetSpec("national_illness", "national_illness.csv",
                _TSLIB + "illness/national_illness.csv", None,
                "W", "csv", "tslib", "ratio", (966, 7)),
):  # fmt: skip
    register_dataset(_spec)
del _spec
