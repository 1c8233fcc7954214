"""The dataset registry: names, specs, lookups and registration errors."""

from __future__ import annotations

import pytest

import tsattn
from tsattn.data import DatasetSpec, get_spec, list_datasets, register_dataset

ALL = ["ETTh1", "ETTh2", "ETTm1", "ETTm2", "electricity", "weather", "exchange_rate", "traffic",
       "solar_AL", "national_illness"]  # fmt: skip


def test_every_public_dataset_is_registered_with_url_step_format_and_protocol() -> None:
    assert tsattn.list_datasets() == list_datasets()
    assert set(ALL) <= set(list_datasets())
    for name in ALL:
        spec = get_spec(name)
        assert spec.url.startswith("https://") and spec.freq and spec.shape[0] > 0
        assert spec.format in ("csv", "lstnet") and spec.protocol in ("tslib", "mtgnn")
    assert get_spec("electricity").shape == (26304, 321)
    assert get_spec("traffic").shape == (17544, 862)
    assert get_spec("solar_AL").shape == (52560, 137) and get_spec("solar_AL").format == "lstnet"
    assert get_spec("exchange_rate").url.endswith(".txt.gz")
    assert get_spec("ETTm2").sha256.startswith("db973ca2")


def test_pinned_checksums_match_the_sha256sums_file(data_dir) -> None:
    for line in (data_dir / "SHA256SUMS").read_text().splitlines():
        digest, filename = line.split()
        spec = next(get_spec(n) for n in list_datasets() if get_spec(n).filename == filename)
        assert spec.sha256 == digest


def test_lookup_is_case_insensitive_and_unknown_names_list_the_choices() -> None:
    assert get_spec("etth1").name == "ETTh1"
    with pytest.raises(ValueError, match=r"unknown dataset 'ETTh3'; registered datasets: ETTh1, "):
        get_spec("ETTh3")


def test_register_rejects_duplicates_and_bad_fields() -> None:
    spec = get_spec("ETTh1")
    with pytest.raises(ValueError, match="dataset 'ETTh1' is already registered; pass overwrite"):
        register_dataset(spec)
    bad = DatasetSpec("x", "x.csv", "file:///x", None, "h", "parquet", "tslib", "ratio", (1, 1))
    with pytest.raises(ValueError, match=r"DatasetSpec\.format must be 'csv' or 'lstnet'"):
        register_dataset(bad)
