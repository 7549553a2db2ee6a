"""Loader fuzzing (issue 12): valid table files (JSON, table-set JSON, CSV, NPZ) and
histogram files (JSON, NPZ) mutated byte by byte and through their JSON structure.  Only a
:class:`~lloydmax.LloydMaxError` may ever escape a loader.

The number of mutated files run is counted; the last test prints it (``pytest -s``) and
holds it above a floor, so a change that skips the loaders cannot pass unnoticed.
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lloydmax.analysis import Histogram

import lloydmax as lm
from lloydmax._torch_tables import read_table
from lloydmax.errors import LloydMaxError

RUN = {"files": 0}
SETTINGS = settings(max_examples=700, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _valid_files() -> dict[str, bytes]:
    import tempfile
    from pathlib import Path

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        one = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)
        both = [lm.solve(bits=1), lm.solve(bits=2, dist="laplace")]
        one.save(d / "t.json")
        lm.save_tables(both, d / "set.json")
        lm.save_tables(both, d / "t.csv")
        lm.save_tables(both, d / "t.npz")
        h = Histogram(n_bins=64, axis=1)
        h.update(np.random.default_rng(0).normal(size=(20, 2)))
        h.save(d / "h.json")
        h.save(d / "h.npz")
        for p in d.iterdir():
            out[p.name] = p.read_bytes()
    return out


VALID = _valid_files()
TABLE_NAMES = ["t.json", "set.json", "t.csv", "t.npz"]
HIST_NAMES = ["h.json", "h.npz"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _load_all(path, name: str) -> None:
    """Every loader that reads this kind of file; only LloydMaxError may escape."""
    RUN["files"] += 1
    loaders = ([lm.load_tables, lambda p: lm.check(lm.load_tables(p)[0])]
               if name in TABLE_NAMES else [Histogram.load])
    if name.endswith(".json") and name in TABLE_NAMES:
        loaders.append(read_table)
    for load in loaders:
        try:
            load(path)
        except LloydMaxError as exc:
            assert "\n" not in str(exc)


def _write(workdir, name: str, data: bytes):
    path = workdir / f"m_{name}"
    path.write_bytes(data)
    return path


mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 1 << 30), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 30), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 30), st.integers(1, 16)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 30), st.just(0)),
    st.tuples(st.just("text"), st.integers(0, 1 << 30),
              st.sampled_from([b"NaN", b"1e400", b"9" * 400, b"[" * 40, b"-", b"\xff", b",",
                               b'"', b"}", b"null", b"-0", b"1e-400"])),
)


def _mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for kind, pos, arg in ops:
        if not buf:
            break
        pos %= len(buf)
        if kind == "set":
            buf[pos] = arg
        elif kind == "insert" or kind == "text":
            buf[pos:pos] = arg
        elif kind == "delete":
            del buf[pos:pos + arg]
        else:
            del buf[pos:]
    return bytes(buf)


@SETTINGS
@given(name=st.sampled_from(TABLE_NAMES + HIST_NAMES), ops=st.lists(mutation, min_size=1,
                                                                       max_size=4))
def test_byte_mutations_raise_only_lloydmax_errors(workdir, name, ops):
    _load_all(_write(workdir, name, _mutate(VALID[name], ops)), name)


json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(10 ** 40), 10 ** 40)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    | st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 2 ** 63, 65536, 17]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:6]):
            yield from _paths(v, (*prefix, i))


def _replace(obj, path, value, drop: bool):
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(obj) if isinstance(obj, dict) else list(obj)
    if not rest and drop:
        del copy[head]
        return copy
    copy[head] = _replace(copy[head], rest, value, drop)
    return copy


def _json_of(name: str):
    """The JSON document inside a valid file, and how to put a changed one back."""
    raw = VALID[name]
    if name.endswith(".json"):
        return json.loads(raw), lambda doc: json.dumps(doc).encode()
    if name.endswith(".csv"):
        lines = raw.decode().splitlines()
        k = next(i for i, line in enumerate(lines) if line.startswith("#"))
        head = lines[k].split(" ", 2)

        def back(doc, lines=lines, k=k, head=head):
            out = list(lines)
            out[k] = f"{head[0]} {head[1]} {json.dumps(doc)}"
            return ("\n".join(out) + "\n").encode()
        return json.loads(head[2]), back
    with np.load(io.BytesIO(raw)) as z:
        arrays = dict(z.items())
    meta = json.loads(str(arrays["meta"].reshape(-1)[0]))

    def back_npz(doc, arrays=arrays):
        buf = io.BytesIO()
        np.savez(buf, **dict(arrays, meta=np.array(json.dumps(doc))))
        return buf.getvalue()
    return meta, back_npz


DOCS = {name: _json_of(name) for name in TABLE_NAMES + HIST_NAMES}


@SETTINGS
@given(name=st.sampled_from(TABLE_NAMES + HIST_NAMES), data=st.data())
def test_structure_mutations_raise_only_lloydmax_errors(workdir, name, data):
    doc, back = DOCS[name]
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        paths = list(_paths(doc))
        path = data.draw(st.sampled_from(paths), label="path")
        drop = bool(path) and data.draw(st.booleans(), label="drop")
        doc = _replace(doc, path, data.draw(json_value, label="value"), drop)
    _load_all(_write(workdir, name, back(doc)), name)


@SETTINGS
@given(name=st.sampled_from(["t.npz", "h.npz"]), member=st.integers(0, 10),
       value=st.sampled_from([np.array("x"), np.array(5.0), np.zeros((2, 2)),
                              np.array([True]), np.arange(3), np.array([np.nan, np.inf]),
                              np.array(["a", "b"]), np.zeros(0)]))
def test_npz_member_swaps_raise_only_lloydmax_errors(workdir, name, member, value):
    with np.load(io.BytesIO(VALID[name])) as z:
        arrays = dict(z.items())
    key = sorted(arrays)[member % len(arrays)]
    buf = io.BytesIO()
    np.savez(buf, **dict(arrays, **{key: value}))
    _load_all(_write(workdir, name, buf.getvalue()), name)


def test_the_valid_files_load(workdir):
    for name in TABLE_NAMES:
        assert lm.load_tables(_write(workdir, name, VALID[name]))
    for name in HIST_NAMES:
        assert Histogram.load(_write(workdir, name, VALID[name])).n_bins == 64
    with zipfile.ZipFile(io.BytesIO(VALID["t.npz"])) as zf:
        assert "meta.npy" in zf.namelist()


def test_count_of_mutated_files():
    print(f"\nfuzzed loaders on {RUN['files']} mutated files")
    assert RUN["files"] >= 1200
