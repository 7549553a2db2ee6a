"""Table format: exact round trips, byte determinism, atomic writes, clear errors."""
import json
import os

import numpy as np
import pytest

import lloydmax as lm


@pytest.fixture(scope="module")
def tables():
    return [lm.solve(bits=b, dist="halfwave-gaussian", uniform=u)
            for b in (1, 2, 3) for u in (False, True)]


def _same(a, b):
    assert np.array_equal(a.levels, b.levels) and np.array_equal(a.thresholds, b.thresholds)
    da, db = a.to_dict(), b.to_dict()
    assert da == db


@pytest.mark.parametrize("fmt", ["json", "csv", "npz"])
def test_round_trip_is_exact(tmp_path, tables, fmt):
    path = tmp_path / f"t.{fmt}"
    lm.save_tables(tables, path)
    back = lm.load_tables(path)
    assert len(back) == len(tables)
    for a, b in zip(tables, back):
        _same(a, b)


@pytest.mark.parametrize("fmt", ["json", "csv", "npz"])
def test_single_table_round_trip(tmp_path, fmt):
    t = lm.solve(n_levels=3, dist="laplace", params={"scale": 0.3})
    path = tmp_path / f"one.{fmt}"
    t.save(path)
    _same(t, lm.load_table(path))


@pytest.mark.parametrize("fmt", ["json", "csv", "npz"])
def test_output_is_byte_deterministic(tmp_path, tables, fmt):
    a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    lm.save_tables(tables, a)
    fresh = [lm.solve(bits=t.bits, dist="halfwave-gaussian", uniform=t.kind == "uniform")
             for t in tables]
    lm.save_tables(fresh, b)
    assert a.read_bytes() == b.read_bytes()


def test_json_has_required_keys_and_repr_floats(tmp_path):
    t = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)
    obj = json.loads(t.to_json())
    for key in ("schema", "distribution", "bits", "n_levels", "kind", "convention", "levels",
                "thresholds", "step", "mse", "sqnr_db", "residual", "scale", "version"):
        assert key in obj
    assert obj["schema"] == "lloydmax.table/1" and obj["version"] == lm.__version__
    assert obj["step"] == float(t.step) and repr(obj["step"]) == repr(float(t.step))
    assert lm.solve(bits=2).to_dict()["step"] is None


def test_schema_file_ships_and_lists_required_keys():
    from importlib import resources

    schema = json.loads(resources.files("lloydmax").joinpath("schema/table-1.json").read_text())
    t = lm.solve(bits=2).to_dict()
    assert set(schema["required"]) <= set(t)
    for key, spec in schema["properties"].items():
        if key in t and "type" in spec:
            types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
            pytype = {"string": str, "integer": int, "number": (int, float), "object": dict,
                      "array": list, "boolean": bool, "null": type(None)}
            assert isinstance(t[key], tuple(pytype[x] for x in types)), key


def _write(path, obj):
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.pop("levels"), "missing required"),
    (lambda d: d.update(schema="other/9"), "unsupported schema"),
    (lambda d: d.update(levels=d["levels"][::-1]), "strictly increasing"),
    (lambda d: d.update(thresholds=d["thresholds"][:-1]), "n_levels - 1"),
    (lambda d: d.update(kind="weird"), "kind"),
    (lambda d: d.update(step=None), "step"),
    (lambda d: d.update(bits=7), "bits"),
    (lambda d: d.update(mse="x"), "must be a number"),
])
def test_malformed_json_tables_raise_typed_errors(tmp_path, mutate, needle):
    d = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True).to_dict()
    mutate(d)
    with pytest.raises(lm.InvalidTableError, match=needle) as info:
        lm.load_table(_write(tmp_path / "bad.json", d))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name,content,needle", [
    ("a.json", "{not json", "not valid JSON"),
    ("a.json", '{"levels": [NaN]}', "non-finite"),
    ("a.csv", "nonsense\n", "header"),
    ("a.csv", "table,index,level,threshold\n0,0,1.0,\n", "metadata"),
    ("a.npz", "not a zip", "npz"),
])
def test_malformed_files(tmp_path, name, content, needle):
    with pytest.raises(lm.InvalidTableError, match=needle):
        lm.load_tables(_write(tmp_path / name, content))


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(lm.InvalidTableError, match="not found"):
        lm.load_table(tmp_path / "nope.json")
    with pytest.raises(lm.InvalidInputError, match="unsupported table format"):
        lm.save_tables([lm.solve(bits=1)], tmp_path / "x.txt")


def test_atomic_write_leaves_no_partial_file_and_keeps_old_content(tmp_path, monkeypatch):
    path = tmp_path / "t.json"
    path.write_text("OLD")
    from lloydmax import _files

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_files.os, "replace", boom)
    with pytest.raises(lm.InvalidInputError, match="No space left"):
        lm.save_tables([lm.solve(bits=1)], path)
    assert path.read_text() == "OLD"
    assert sorted(os.listdir(tmp_path)) == ["t.json"]  # the temporary file is gone


def test_unwritable_directory(tmp_path):
    with pytest.raises(lm.InvalidInputError, match="does not exist"):
        lm.save_tables([lm.solve(bits=1)], tmp_path / "no" / "such" / "t.json")


def test_quantize_dtypes_and_nan():
    t = lm.solve(bits=2)
    x32 = np.array([-3, -0.1, 0.0, 0.5, 2.0, np.nan], dtype=np.float32)
    y = t.quantize(x32)
    assert y.dtype == np.float32 and np.isnan(y[-1])
    index = np.searchsorted(t.thresholds, x32[:-1].astype(np.float64))
    np.testing.assert_array_equal(y[:-1], t.levels[index].astype(np.float32))
    assert t.quantize([1, 2, 3]).dtype == np.float64
    assert t.quantize(np.zeros((2, 3))).shape == (2, 3)
    assert t.quantize(np.array([np.nan]), return_index=True)[0] == -1
    assert np.array_equal(lm.quantize([0.1, 5.0], t), t.quantize([0.1, 5.0]))


def test_wide_dead_zone_table_round_trips(tmp_path):
    """eps above the first level is a valid dead-zone table (found by the check work)."""
    t = lm.solve(3, dist="halfwave-gaussian", uniform=True, zero_threshold=0.8, params={"std": 2})
    assert t.thresholds[0] > t.levels[1]
    t.save(tmp_path / "dz.json")
    _same(t, lm.load_table(tmp_path / "dz.json"))
    d = lm.solve(bits=2).to_dict()
    d["thresholds"][0] = d["levels"][1] + 0.01  # not allowed without the dead-zone convention
    d["thresholds"][1] = d["levels"][1] + 0.02
    with pytest.raises(lm.InvalidTableError, match="between"):
        lm.table_from_dict(d)


def test_infinite_sqnr_and_missing_entropy_round_trip(tmp_path):
    t = lm.solve_data([0.0, 0.0, 1.0, 1.0], bits=1)
    assert t.mse == 0.0 and t.sqnr_db == float("inf")
    t.save(tmp_path / "z.json")
    back = lm.load_table(tmp_path / "z.json")
    assert back.sqnr_db == float("inf")
    assert json.loads((tmp_path / "z.json").read_text())["sqnr_db"] is None
    d = lm.solve(bits=2).to_dict()
    del d["entropy_bits"]
    loaded = lm.table_from_dict(d)
    assert loaded.entropy_bits is None
    loaded.save(tmp_path / "e.json")  # no crash on a table without entropy
    assert lm.load_table(tmp_path / "e.json").entropy_bits is None


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.update(scale=-1.0), "scale"),
    (lambda d: d.update(mse=-0.1), "non-negative"),
    (lambda d: d["distribution"].pop("params"), "params"),
    (lambda d: d.update(n_levels=70000), "65536"),
])
def test_loader_enforces_the_schema_ranges(mutate, needle):
    d = lm.solve(bits=2).to_dict()
    mutate(d)
    with pytest.raises(lm.InvalidTableError, match=needle):
        lm.table_from_dict(d)


def test_scale_records_the_distribution_scale():
    a = lm.solve(bits=2, dist="halfwave-gaussian", params={"std": 2.5})
    b = lm.solve(bits=2, dist="halfwave-gaussian").scaled(2.5)
    assert a.scale == b.scale == 2.5 and a.params == b.params
    assert type(a.mse) is float and type(a.step) is type(None)
