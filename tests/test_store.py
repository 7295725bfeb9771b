"""The bundled prediction stores: format, corruption, pickle refusal, privacy, limits."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import io
import logging
import os
import pickle
import sqlite3
import stat
from pathlib import Path

import diskcache
import fusioncore_diskcache
import numpy as np
import pytest
from fusioncore_diskcache import (
    CorruptEntryError,
    DiskCacheStore,
    MemoryStore,
    StoreDirectoryError,
    StoreError,
    decode_entry,
    encode_entry,
    store_key,
)
from fusioncore_diskcache.entry import FORMAT_MAGIC, entry_digest

from fusioncore.contracts import PredictionStore
from fusioncore.plugins import load_plugins

LOGGER = "fusioncore_diskcache"


def sample_arrays(n: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "features": rng.standard_normal((n, 3)).astype(np.float32),
        "window_ids": np.arange(n, dtype=np.int64) * 7,
        "feature_names": np.array(["recon_error", "zscore", "état"]),
        "flags": rng.random(n) > 0.5,
    }


def big_arrays(nbytes: int = 100_000, seed: int = 0) -> dict[str, np.ndarray]:
    """An entry large enough for diskcache to keep it in its own file."""
    return {"score": np.random.default_rng(seed).random(nbytes // 8)}


def assert_same(got: dict[str, np.ndarray] | None, want: dict[str, np.ndarray]) -> None:
    assert got is not None
    assert set(got) == set(want)
    for name, array in want.items():
        assert got[name].dtype == array.dtype, name
        np.testing.assert_array_equal(got[name], array)


class Exploit:
    """Unpickling this creates ``marker``: proof that a pickle was executed."""

    def __init__(self, marker: Path, padding: int = 0) -> None:
        self.marker, self.padding = marker, padding

    def __reduce__(self):
        source = f"import os; os.mkdir({str(self.marker)!r})\n#" + "x" * self.padding
        return (exec, (source,))


@pytest.fixture(params=["diskcache", "memory"])
def make_store(request, tmp_path):
    """Builds a store of either kind; disk stores reopen the same directory."""
    opened = []

    def make(**params):
        if request.param == "memory":
            store = MemoryStore(None, **params)
        else:
            store = DiskCacheStore(tmp_path / "store", **params)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


# ------------------------------------------------------------------ registration
def test_plugin_registers_both_stores_through_its_entry_point():
    (ep,) = md.entry_points(group="fusioncore", name="diskcache")
    assert ep.value == "fusioncore_diskcache"
    registry = load_plugins(strict=True, entry_points=[ep]).registry
    assert registry.get("store", "diskcache") is DiskCacheStore
    assert registry.get("store", "memory") is MemoryStore


def test_stores_satisfy_the_contract(tmp_path):
    with DiskCacheStore(tmp_path / "s") as disk, MemoryStore(tmp_path) as memory:
        assert isinstance(disk, PredictionStore)
        assert isinstance(memory, PredictionStore)


# -------------------------------------------------------------------- store_key
def test_store_key_changes_with_every_part_and_is_unambiguous():
    key = store_key("det", "data", "train")
    assert key == store_key("det", "data", "train")
    assert len(key) == 64 and int(key, 16) >= 0
    others = {
        store_key("det2", "data", "train"),
        store_key("det", "data2", "train"),
        store_key("det", "data", "test_fuzzy"),
        store_key("data", "det", "train"),
    }
    assert key not in others and len(others) == 4
    assert store_key("ab", "c", "s") != store_key("a", "bc", "s")


@pytest.mark.parametrize("bad", ["", None, 3])
def test_store_key_rejects_empty_or_non_string_parts(bad):
    with pytest.raises(StoreError, match="split"):
        store_key("det", "data", bad)


# ----------------------------------------------------------------- entry format
def test_entry_format_detects_every_single_byte_flip_in_the_payload():
    blob = encode_entry(sample_arrays(5), key="k")
    assert blob.startswith(FORMAT_MAGIC)
    rng = np.random.default_rng(1)
    for position in rng.integers(0, len(blob), size=40):
        broken = bytearray(blob)
        broken[position] ^= 0xFF
        with pytest.raises(CorruptEntryError):
            decode_entry(bytes(broken), key="k")
    with pytest.raises(CorruptEntryError, match="header"):
        decode_entry(blob[:10], key="k")


def test_entry_checksum_covers_the_key():
    blob = encode_entry(sample_arrays(5), key="a")
    assert_same(decode_entry(blob, key="a"), sample_arrays(5))
    with pytest.raises(CorruptEntryError, match="written under another key"):
        decode_entry(blob, key="b")


def test_entries_of_the_older_format_are_dropped_without_a_warning(caplog):
    from fusioncore.contracts import arrays_to_npz_bytes

    payload = arrays_to_npz_bytes(sample_arrays(5))
    store = MemoryStore()
    store.blobs["k"] = b"fcnpz\x01" + hashlib.sha256(payload).digest() + payload  # format 1: key not hashed
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert store.get("k") is None
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "outdated entry k" in caplog.text and "format version 1" in caplog.text
    assert "k" not in store.blobs


def test_object_arrays_and_bad_values_are_refused():
    with pytest.raises(StoreError, match="dtype object"):
        encode_entry({"x": np.array([{"a": 1}], dtype=object)}, key="k")
    with pytest.raises(StoreError, match="mapping"):
        encode_entry([np.zeros(3)], key="k")  # type: ignore[arg-type]


def forged_entry(payload: bytes, key: str = "k") -> bytes:
    """An entry with a *valid* header and checksum (for ``key``) around an arbitrary payload."""
    return FORMAT_MAGIC + entry_digest(key, payload) + payload


def test_forged_entries_with_valid_checksums_never_unpickle(tmp_path):
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    np.savez(buf, x=np.array([Exploit(marker)], dtype=object), allow_pickle=True)
    for payload in (buf.getvalue(), pickle.dumps(Exploit(marker))):
        with pytest.raises(CorruptEntryError):
            decode_entry(forged_entry(payload), key="k")
    assert not marker.exists()


# ------------------------------------------------------------------- round trip
def test_round_trip_missing_keys_delete_and_clear(make_store):
    store = make_store()
    small, big = sample_arrays(), big_arrays()
    assert store.get("absent") is None
    store.put("small", small)
    store.put("big", big)
    assert_same(store.get("small"), small)
    assert_same(store.get("big"), big)
    assert sorted(store.keys()) == ["big", "small"]
    assert "small" in store and "absent" not in store

    store.put("small", sample_arrays(seed=9))  # replacing an entry
    assert_same(store.get("small"), sample_arrays(seed=9))

    store.delete("small")
    store.delete("small")  # absent: not an error
    assert list(store.keys()) == ["big"]
    store.clear()
    assert list(store.keys()) == [] and store.get("big") is None

    stats = store.stats()
    assert (stats.hits, stats.misses, stats.corrupted, stats.entries) == (3, 2, 0, 0)
    assert stats.hit_rate == pytest.approx(3 / 5)


def test_disk_entries_persist_across_store_objects(tmp_path):
    with DiskCacheStore(tmp_path / "s") as store:
        store.put("k", sample_arrays())
    with DiskCacheStore(tmp_path / "s") as store:
        assert_same(store.get("k"), sample_arrays())


@pytest.mark.parametrize("key", ["", None, b"bytes-key"])
def test_bad_keys_are_refused(make_store, key):
    store = make_store()
    with pytest.raises(StoreError):
        store.put(key, sample_arrays())
    with pytest.raises(StoreError):
        store.get(key)


# ------------------------------------------------------------------- corruption
def flip_disk_entry(directory: Path, key: str) -> str:
    """Flip one payload byte of ``key``'s entry, wherever diskcache keeps it."""
    with sqlite3.connect(directory / "cache.db") as con:
        ((value, filename),) = con.execute(
            "SELECT value, filename FROM Cache WHERE key = ?", (key,)
        ).fetchall()
        if filename is None:
            broken = bytearray(value)
            broken[-20] ^= 0xFF
            con.execute("UPDATE Cache SET value = ? WHERE key = ?", (bytes(broken), key))
            return "inline"
    path = directory / filename
    broken = bytearray(path.read_bytes())
    broken[len(broken) // 2] ^= 0xFF
    path.write_bytes(bytes(broken))
    return "file"


@pytest.mark.parametrize("arrays", [sample_arrays(), big_arrays()], ids=["inline", "file"])
def test_corrupted_disk_entry_is_reported_dropped_and_recomputable(tmp_path, caplog, arrays):
    with DiskCacheStore(tmp_path / "s") as store:
        store.put("k", arrays)
        flip_disk_entry(store.directory, "k")
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert store.get("k") is None
        assert "corrupted entry k" in caplog.text and "checksum" in caplog.text
        assert "k" not in store and store.stats().corrupted == 1
        if "score" in arrays:  # its value file went with the row
            assert not list(store.directory.rglob("*.val"))
        store.put("k", arrays)
        assert_same(store.get("k"), arrays)


def test_corrupted_memory_entry_is_reported_dropped_and_recomputable(caplog):
    store = MemoryStore()
    store.put("k", sample_arrays())
    broken = bytearray(store.blobs["k"])
    broken[-1] ^= 0xFF
    store.blobs["k"] = bytes(broken)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.get("k") is None
    assert "corrupted entry k" in caplog.text
    assert "k" not in store.blobs and store.stats().corrupted == 1
    store.put("k", sample_arrays())
    assert_same(store.get("k"), sample_arrays())


# -------------------------------------------------------------- planted pickles
def test_the_exploit_used_below_really_fires(tmp_path):
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(Exploit(marker)))
    assert marker.exists()


def plant(directory: Path, key, value) -> tuple[int, str | None]:
    """Write ``value`` the way any plain diskcache user would; returns (mode, filename)."""
    with diskcache.Cache(str(directory)) as cache:
        cache.set(key, value)
        ((mode, filename),) = cache._sql(
            "SELECT mode, filename FROM Cache WHERE rowid = (SELECT MAX(rowid) FROM Cache)"
        ).fetchall()
    return mode, filename


@pytest.mark.parametrize(("padding", "in_file"), [(0, False), (100_000, True)], ids=["inline", "in-file"])
def test_planted_pickle_is_never_unpickled(tmp_path, caplog, padding, in_file):
    marker = tmp_path / "pwned"
    with DiskCacheStore(tmp_path / "s") as store:
        key = store_key("det", "data", "train")
        store.put(key, sample_arrays())
        mode, filename = plant(store.directory, key, Exploit(marker, padding))
        assert mode == diskcache.core.MODE_PICKLE and (filename is not None) == in_file
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert store.get(key) is None
        assert not marker.exists()
        assert "never unpickles" in caplog.text
        assert key not in store and store.stats().corrupted == 1
        assert not list(store.directory.rglob("*.val"))  # its file went with the row
        store.put(key, sample_arrays())
        assert_same(store.get(key), sample_arrays())
    assert not marker.exists()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("text " * 10_000, id="text-file"),
        pytest.param("short text", id="text-inline"),
        pytest.param(42, id="integer"),
        pytest.param(b"raw bytes that are no entry", id="foreign-bytes"),
    ],
)
def test_foreign_values_under_a_valid_key_are_dropped(tmp_path, value):
    with DiskCacheStore(tmp_path / "s") as store:
        plant(store.directory, "k", value)
        assert store.get("k") is None
        assert store.stats().corrupted == 1 and "k" not in store


def test_planted_pickled_key_is_invisible_and_evicted(tmp_path):
    marker = tmp_path / "pwned"
    with DiskCacheStore(tmp_path / "s") as store:
        store.put("mine", sample_arrays())
        plant(store.directory, (Exploit(marker),), b"x")  # a tuple key is pickled
        assert list(store.keys()) == ["mine"] and store.stats().entries == 1
        assert store.evict(to_bytes=2**40) == 1  # only the foreign row goes
        assert_same(store.get("mine"), sample_arrays())
        store.clear()
    assert not marker.exists()


def test_value_file_names_are_confined_to_the_store(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_bytes(forged_entry(b"PK\x05\x06" + b"\x00" * 18))
    with DiskCacheStore(tmp_path / "s") as store:
        store.put("k", big_arrays())
        with sqlite3.connect(store.directory / "cache.db") as con:
            con.execute("UPDATE Cache SET filename = ? WHERE key = 'k'", (str(outside),))
        assert store.get("k") is None
        assert store.stats().corrupted == 1
    assert outside.exists()  # neither read as an entry nor deleted


# ------------------------------------------------------------------- directory
def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_directories_are_private(tmp_path):
    with DiskCacheStore(tmp_path / "a" / "b" / "store") as store:
        assert store.directory == tmp_path / "a" / "b" / "store"
        for path in (tmp_path / "a", tmp_path / "a" / "b", store.directory):
            assert mode_of(path) == 0o700, path


def test_default_directory_follows_the_cache_dir_variable():
    with DiskCacheStore() as store:
        assert store.directory == Path(os.environ["FUSIONCORE_CACHE_DIR"]) / "predictions"
        assert mode_of(store.directory) == 0o700


def test_loose_directory_is_tightened_with_a_warning(tmp_path, caplog):
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger=LOGGER), DiskCacheStore(loose):
        pass
    assert mode_of(loose) == 0o700
    assert "tightened it to 0700" in caplog.text


def test_unusable_directories_are_refused(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreDirectoryError, match="not a directory"):
        DiskCacheStore(tmp_path / "file")
    real_uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 1)
    with pytest.raises(StoreDirectoryError, match="belongs to uid"):
        DiskCacheStore(tmp_path)


# ---------------------------------------------------------------- size limit
def test_size_limit_rejects_puts_without_evicting(make_store, caplog):
    base = make_store().stats().size_bytes
    limit = base + 250_000
    store = make_store(size_limit_bytes=limit)
    store.put("a", big_arrays(seed=1))
    store.put("b", big_arrays(seed=2))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        store.put("c", big_arrays(seed=3))
    assert "over its limit" in caplog.text
    stats = store.stats()
    assert stats.rejected == 1 and stats.size_bytes <= limit
    assert sorted(store.keys()) == ["a", "b"]
    assert_same(store.get("a"), big_arrays(seed=1))


def test_evict_drops_least_recently_used_first(make_store):
    store = make_store()
    for seed, key in enumerate("abc"):
        store.put(key, big_arrays(seed=seed))
    assert store.get("a") is not None  # now b is the least recently used
    size = store.stats().size_bytes
    assert store.evict(to_bytes=size - 50_000) == 1
    assert sorted(store.keys()) == ["a", "c"]
    assert store.evict(to_bytes=size) == 0
    assert store.evict(to_bytes=0) == 2 and list(store.keys()) == []
    with pytest.raises(StoreError):
        store.evict(to_bytes=-1)


def test_bad_size_limits_are_refused():
    for bad in (0, -5, 1.5, True):
        with pytest.raises(StoreError, match="size_limit_bytes"):
            MemoryStore(size_limit_bytes=bad)


def test_package_exports_are_documented():
    for name in fusioncore_diskcache.__all__:
        obj = getattr(fusioncore_diskcache, name)
        if callable(obj):
            assert obj.__doc__, name
