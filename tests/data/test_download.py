"""Locating files, downloading with checksum and atomic rename, the verification ledger."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from tsattn.data import (
    DatasetSpec,
    dataset_status,
    download_dataset,
    load_dataset,
    locate_dataset,
    register_dataset,
    verify_dataset,
)
from tsattn.data import download as download_module
from tsattn.data.registry import _SPECS

BODY = b"date,a,b\n" + b"".join(
    f"2024-01-01 {h:02d}:00:00,{h}.0,{2 * h}.0\n".encode() for h in range(24)
)
DIGEST = hashlib.sha256(BODY).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/cut"):  # announce the full body, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[: len(BODY) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """Register a toy dataset, with no data dir or ./datasets to find it in."""
    monkeypatch.delenv("TSATTN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TSATTN_CACHE_DIR", str(tmp_path / "cache"))
    names = []

    def make(url: str, sha256: str | None = DIGEST, name: str = "toy") -> DatasetSpec:
        spec = DatasetSpec(name, "toy.csv", url, sha256, "h", "csv", "tslib", "ratio", (24, 2))
        register_dataset(spec, overwrite=True)
        names.append(name)
        return spec

    yield make
    for name in names:
        _SPECS.pop(name, None)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_from_local_http_server_lands_verified_in_the_cache(server, toy, tmp_path):
    toy(f"{server}/toy.csv")
    path = locate_dataset("toy", progress=False)
    assert path == tmp_path / "cache" / "toy.csv"
    assert path.read_bytes() == BODY
    assert _leftovers(tmp_path / "cache") == ["toy.csv", "verified.json"]
    frame = load_dataset("toy")
    assert frame.shape == (24, 2) and frame.index.freqstr is None and frame["b"].iloc[3] == 6.0


def test_checksum_mismatch_on_download_saves_nothing(server, toy, tmp_path):
    toy(f"{server}/toy.csv", sha256="0" * 64)
    with pytest.raises(
        ValueError,
        match=r"checksum mismatch for the download of toy.csv from "
        rf"{server}/toy.csv: sha256 {DIGEST}, expected 0{{64}}\. Nothing was saved",
    ):
        download_dataset("toy", progress=False)
    assert _leftovers(tmp_path / "cache") == []


def test_interrupted_download_leaves_no_partial_file(server, toy, tmp_path):
    toy(f"{server}/cut/toy.csv")
    with pytest.raises(
        FileNotFoundError,
        match=r"(?s)file toy.csv not found.*Downloading "
        rf"{server}/cut/toy.csv to .*toy.csv failed \(.*(IncompleteRead|stopped after)",
    ):
        locate_dataset("toy", progress=False)
    assert _leftovers(tmp_path / "cache") == []


def test_gz_urls_are_decompressed_and_checked_after_decompression(toy, tmp_path):
    source = tmp_path / "src" / "toy.csv.gz"
    source.parent.mkdir()
    source.write_bytes(gzip.compress(BODY))
    toy(source.as_uri())
    path = download_dataset("toy", root=tmp_path / "here", progress=False)
    assert path == tmp_path / "here" / "toy.csv" and path.read_bytes() == BODY


def test_offline_error_names_file_every_place_url_and_manual_steps(toy, tmp_path, monkeypatch):
    monkeypatch.setenv("TSATTN_DATA_DIR", str(tmp_path / "shared"))
    toy("http://127.0.0.1:9/toy.csv")  # port 9 (discard): connection refused
    with pytest.raises(FileNotFoundError) as info:
        locate_dataset("toy", root=tmp_path / "mine", progress=False)
    message = str(info.value)
    for fragment in (
        "dataset 'toy': file toy.csv not found. Searched:",
        f"root argument: {tmp_path / 'mine' / 'toy.csv'}",
        f"$TSATTN_DATA_DIR: {tmp_path / 'shared' / 'toy.csv'}",
        f"./datasets: {tmp_path / 'datasets' / 'toy.csv'}",
        f"user cache: {tmp_path / 'cache' / 'toy.csv'}",
        f"Downloading http://127.0.0.1:9/toy.csv to {tmp_path / 'mine' / 'toy.csv'} failed",
        "To place it by hand: download http://127.0.0.1:9/toy.csv, save it as",
        "or set TSATTN_DATA_DIR to the folder that holds toy.csv",
    ):
        assert fragment in message
    with pytest.raises(FileNotFoundError, match="download=False, so it was not fetched from"):
        locate_dataset("toy", download=False)


def test_corrupted_cached_file_is_detected_not_used(toy, tmp_path):
    toy("http://127.0.0.1:9/toy.csv")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "toy.csv").write_bytes(BODY.replace(b"6.0", b"7.0"))
    with pytest.raises(
        ValueError,
        match=r"checksum mismatch for 'toy': .*toy.csv has sha256 "
        r"[0-9a-f]{64}, expected " + DIGEST + r"\. The file is corrupted",
    ):
        load_dataset("toy")


def test_verification_is_remembered_by_size_and_mtime(toy, tmp_path, monkeypatch):
    toy("http://127.0.0.1:9/toy.csv")
    (tmp_path / "datasets").mkdir()
    target = tmp_path / "datasets" / "toy.csv"
    target.write_bytes(BODY)
    calls = []
    real = download_module.sha256_file
    monkeypatch.setattr(download_module, "sha256_file", lambda p: calls.append(p) or real(p))
    download_module._VERIFIED.clear()
    assert locate_dataset("toy") == target and len(calls) == 1
    assert locate_dataset("toy") == target and len(calls) == 1  # remembered
    download_module._VERIFIED.clear()
    assert locate_dataset("toy") == target and len(calls) == 1  # remembered on disk too
    target.write_bytes(BODY.replace(b"6.0", b"7.0"))  # same size, new mtime
    with pytest.raises(ValueError, match="checksum mismatch for 'toy'"):
        locate_dataset("toy")
    assert len(calls) == 2


def test_verify_and_status_on_the_real_files(data_dir):
    assert verify_dataset("ETTh1", root=data_dir) == data_dir / "ETTh1.csv"
    assert verify_dataset("exchange_rate", root=data_dir).name == "exchange_rate.txt"
    rows = {row["name"]: row for row in dataset_status(root=data_dir)}
    assert rows["weather"]["path"] == data_dir / "weather.csv" and rows["weather"]["pinned"]
    assert rows["ETTh1"]["path"] == data_dir / "ETTh1.csv"
    assert not rows["electricity"]["pinned"]
