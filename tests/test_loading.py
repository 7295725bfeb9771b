"""Parsed columns are cached by file content: a second read skips parsing, an edit re-parses."""

from __future__ import annotations

import numpy as np
import pytest

from fusioncore.data import formats
from fusioncore.data.loading import load_files
from fusioncore.errors import ConfigError, FormatError

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


def test_bad_rows_are_skipped_by_default_and_accounted_per_file(tmp_path):
    path = tmp_path / "DoS-dirty.csv"
    lines = CSV.splitlines()
    lines[10] = "1.0,2G0,00,0"  # bad hex in the ID
    lines[20] = "1.0,2C0,0"  # wrong field count
    lines[30] = "1.0,2C0,00,0"
    path.write_text("\n".join(lines) + "\n")
    loaded = load_files([path])
    [read] = loaded.reads
    assert (read.records, read.frames, read.skipped) == (500, 498, 2)
    assert read.first_lines == {"bad hex in CAN ID": (11,), "wrong field count": (21,)}
    assert loaded.skipped_reasons == {"bad hex in CAN ID": 1, "wrong field count": 1}
    with pytest.raises(FormatError, match="bad hex in CAN ID") as info:
        load_files([path], errors="raise")  # a skip-mode cache entry is never served to raise mode
    assert info.value.line == 11
    again = load_files([path])  # from the cache, with the same accounting
    assert again.reads == loaded.reads


def test_cache_key_holds_error_mode_and_reader_code_version(tmp_path, monkeypatch):
    from fusioncore.data import loading

    path = tmp_path / "DoS-toy.csv"
    path.write_text(CSV)
    load_files([path], errors="skip")
    load_files([path], errors="raise")
    names = sorted(p.name for p in (loading.cache_dir("frames")).glob(f"{loading.file_sha256(path)}-*"))
    assert len(names) == 2 and any("-skip-" in n for n in names) and any("-raise-" in n for n in names)
    reader = formats.detect_format(path)
    before = loading.reader_version(reader)
    monkeypatch.setattr("fusioncore.__version__", "0.0.0-other")
    assert loading.reader_version(reader) != before


def test_no_format_reader_installed_is_an_error_not_a_fallback(tmp_path):
    path = tmp_path / "DoS-toy.csv"
    path.write_text(CSV)
    with pytest.raises(ConfigError, match="no capture format reader is installed"):
        load_files([path], readers=())
    with pytest.raises(ConfigError, match="no capture format reader is installed"):
        formats.read_capture(path, readers=())


def test_a_multi_bus_log_stays_apart_through_the_cache(tmp_path):
    text = "".join(f"({1 + i / 100:.6f}) can{i % 2} {0x100 + i % 5:03X}#{i % 256:02X}\n" for i in range(400))
    path = tmp_path / "two-buses.log"
    path.write_text(text)
    first = load_files([path])
    copy = tmp_path / "copy.log"
    copy.write_text(text)
    second = load_files([copy])  # same bytes, served from the cache under the new name
    assert first.frames.sources == (f"{path}#can0", f"{path}#can1")
    assert second.frames.sources == (f"{copy}#can0", f"{copy}#can1")
    assert first.reads[0].notes and "2 interfaces" in second.reads[0].notes[0]
    from fusioncore.data.windows import WindowSpec, window_starts

    starts = window_starts(second.frames, WindowSpec(100, 100))
    assert len(starts) == 4  # 200 frames per bus, no window mixes the buses


@pytest.mark.parametrize("which", ["file", "joined", "swapped"])
def test_a_damaged_frame_cache_is_reparsed_never_served(tmp_path, caplog, monkeypatch, which):
    """A flipped byte in a cached column, or another file's entry under this key, is re-parsed."""
    import logging
    import shutil

    from fusioncore.data import loading

    monkeypatch.setenv("FUSIONCORE_CACHE_DIR", str(tmp_path / "cache"))  # this test's entries only

    paths = []
    for i in range(2):
        paths.append(tmp_path / f"DoS-toy{i}.csv")
        paths[-1].write_text(CSV.replace("0FF,0", f"0F{i},0"))
    # before the damage: the loaded frames are mapped from the cache files damaged below
    fingerprint = load_files(paths).frames.fingerprint()
    truth = [formats.read_capture(p).frames for p in paths]
    cache = loading.cache_dir("frames")
    own = sorted(cache.glob(f"{loading.file_sha256(paths[0])}-*"))[0]
    if which == "swapped":  # the other file's parsed columns under this file's key
        other = sorted(cache.glob(f"{loading.file_sha256(paths[1])}-*"))[0]
        shutil.rmtree(own)
        shutil.copytree(other, own)
    else:
        entry = own if which == "file" else sorted(cache.glob("joined-*"))[0]
        column = entry / "data.npy"
        data = bytearray(column.read_bytes())
        data[-5] ^= 0x04
        column.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="fusioncore.data.loading"):
        again = load_files(paths)
    assert "frame cache" in caplog.text
    assert again.frames.fingerprint() == fingerprint
    for i, frames in enumerate(truth):
        np.testing.assert_array_equal(again.frames.data[again.frames.source == i], frames.data)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fusioncore.data.loading"):
        load_files(paths)  # the bad entry was replaced: no warning the next time
    assert "frame cache" not in caplog.text
