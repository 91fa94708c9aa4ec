"""Manifest I/O: schema version and kind checks, atomic writes, band layout."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from manifests.bands import band_profile_db, erb_layout
from manifests.io import ManifestError, band_layout, read_manifest, table_from_rows, write_manifest
from manifests.schema import METADATA_KEY


def test_round_trip_and_layout(tmp_path):
    layout = erb_layout(48000)
    path = str(tmp_path / "examples.parquet")
    write_manifest(table_from_rows([{"example_id": "train-00000000", "split": "train", "noise_profile_db": [1.0, 2.0]}], "examples"),
                   path, "examples", {"band_layout": layout.to_dict()})
    table = read_manifest(path, "examples")
    assert table.num_rows == 1 and table.column("example_id")[0].as_py() == "train-00000000"
    assert band_layout(path) == layout
    assert not list(tmp_path.glob("*.tmp-*"))
    with pytest.raises(ManifestError, match="expected 'sources'"):
        read_manifest(path, "sources")


def test_wrong_schema_version_is_refused(tmp_path):
    path = tmp_path / "old.parquet"
    table = table_from_rows([], "examples")
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps({"kind": "examples", "version": 999}).encode()})
    pq.write_table(table, path)
    with pytest.raises(ManifestError, match=r"schema version 999.*reads version 2.*rebuild"):
        read_manifest(str(path), "examples")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "foreign.parquet")
    with pytest.raises(ManifestError, match="not a hifi-denoise manifest"):
        read_manifest(str(tmp_path / "foreign.parquet"), "examples")
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(str(tmp_path / "missing.parquet"), "examples")


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_band_layout_covers_all_bins_and_white_noise_is_flat(rate):
    layout = erb_layout(rate, n_bands=48, n_fft=2048, hop=512)
    widths = np.diff(layout.band_edges_bin)
    assert layout.n_bands == 48 and widths.min() >= 1 and layout.band_edges_bin[-1] == 1025
    assert np.all(np.diff(layout.band_centers_hz) > 0)
    noise = np.random.default_rng(0).standard_normal((1, rate * 4)) * 0.1
    profile = band_profile_db(noise, layout)
    # white noise of variance 0.01 reads -20 dB per band (the density is variance-normalized)
    assert np.all(np.abs(profile[widths >= 4] - (-20.0)) < 1.0)
    assert abs(float(np.median(profile)) + 20.0) < 0.3
