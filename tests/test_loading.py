"""Parsed columns are cached by file content: a second read skips parsing, an edit re-parses."""

from __future__ import annotations

import numpy as np

from fusioncore.data import formats
from fusioncore.data.loading import load_files

CSV = "timestamp,arbitration_id,data_field,attack\n" + "\n".join(
    f"{1.0 + i / 1000:.6f},{0x100 + i % 7:03X},{i % 256:02X}00FF,{int(i % 50 == 0)}" for i in range(500)
) + "\n"


def test_second_read_comes_from_the_cache_and_an_edit_reparses(tmp_path, monkeypatch):
    path = tmp_path / "DoS-toy.csv"
    path.write_text(CSV)
    first = load_files([path])
    reader = formats.detect_format(path)
    calls = []
    original = type(reader).read

    def counting_read(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(reader), "read", counting_read)
    second = load_files([path])
    assert calls == []  # served from the column cache
    assert second.frames.fingerprint() == first.frames.fingerprint()
    assert second.hashes == first.hashes
    path.write_text(CSV.replace("0FF,0", "0FE,0", 1))  # one byte differs
    third = load_files([path])
    assert calls == [1] and third.hashes != first.hashes
    assert not np.array_equal(third.frames.data, first.frames.data)
