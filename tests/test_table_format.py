"""One catalogue of tampered table files, run through every reader of the format:
``lm.load_table`` (JSON, and the same tables as CSV and NPZ), ``lloydmax.torch.read_table``
and the shipped JSON Schema.  All readers must agree: every tampered file is rejected
with InvalidTableError, and every valid one is read to the same numbers."""
from __future__ import annotations

import copy
import importlib.resources
import json

import jsonschema
import numpy as np
import pytest

import lloydmax as lm
from lloydmax import _format

torch_consumer = pytest.importorskip("lloydmax.torch")


def _base(kind: str) -> dict:
    if kind == "hwgq-uniform":
        return lm.solve(bits=2, dist="halfwave-gaussian", uniform=True).to_dict()
    if kind == "deadzone":
        return lm.solve(bits=2, dist="halfwave-gaussian", uniform=True,
                        zero_threshold=0.32).to_dict()
    return lm.solve(bits=3, dist="gaussian").to_dict()


def _set(**changes):
    def mutate(d):
        d.update(changes)
    return mutate


def _drop(key):
    def mutate(d):
        d.pop(key)
    return mutate


def _levels(fn):
    def mutate(d):
        d["levels"] = fn(list(d["levels"]))
    return mutate


def _thresholds(fn):
    def mutate(d):
        d["thresholds"] = fn(list(d["thresholds"]))
    return mutate


def _swap_first_two(v):
    v[0], v[1] = v[1], v[0]
    return v


def _move_first(delta):
    def fn(v):
        v[0] += delta
        return v
    return fn


# (name, base, mutation, the JSON Schema can see it)
CATALOGUE = [
    ("bits too small", "gauss", _set(bits=2), False),
    ("bits too large", "gauss", _set(bits=4), False),
    ("bits out of range", "gauss", _set(bits=17), True),
    ("bits a string", "gauss", _set(bits="3"), True),
    ("bits a float", "gauss", _set(bits=3.5), True),
    ("n_levels one more", "gauss", _set(n_levels=9), False),
    ("n_levels one less", "gauss", _set(n_levels=7), False),
    ("n_levels 1", "gauss", _set(n_levels=1), True),
    ("n_levels bool", "gauss", _set(n_levels=True), True),
    ("kind banana", "gauss", _set(kind="banana"), True),
    ("kind null", "gauss", _set(kind=None), True),
    ("convention unknown", "gauss", _set(convention="floor"), True),
    ("mse negative", "gauss", _set(mse=-0.01), True),
    ("mse string", "gauss", _set(mse="0.03"), True),
    ("residual negative", "gauss", _set(residual=-1.0), True),
    ("scale zero", "gauss", _set(scale=0.0), True),
    ("scale negative", "gauss", _set(scale=-1.0), True),
    ("entropy above log2 n", "gauss", _set(entropy_bits=3.5), False),
    ("entropy negative", "gauss", _set(entropy_bits=-0.5), True),
    ("iterations negative", "gauss", _set(iterations=-1), True),
    ("converged a string", "gauss", _set(converged="yes"), True),
    ("version a number", "gauss", _set(version=1), True),
    ("schema other", "gauss", _set(schema="lloydmax.table/9"), True),
    ("distribution a string", "gauss", _set(distribution="gaussian"), True),
    ("distribution without name", "gauss", _set(distribution={"params": {}}), True),
    ("distribution params a list", "gauss", _set(distribution={"name": "g", "params": [1]}), True),
    ("distribution param a string", "gauss",
     _set(distribution={"name": "g", "params": {"std": "1"}}), True),
    ("missing distribution", "gauss", _drop("distribution"), True),
    ("missing levels", "gauss", _drop("levels"), True),
    ("missing thresholds", "gauss", _drop("thresholds"), True),
    ("missing mse", "gauss", _drop("mse"), True),
    ("missing schema", "gauss", _drop("schema"), True),
    ("missing bits", "gauss", _drop("bits"), True),
    ("missing step", "gauss", _drop("step"), True),
    ("missing version", "gauss", _drop("version"), True),
    ("levels unsorted", "gauss", _levels(_swap_first_two), False),
    ("levels repeated", "gauss", _levels(lambda v: [v[0], v[0], *v[2:]]), False),
    ("levels a string", "gauss", _levels(lambda v: [str(v[0]), *v[1:]]), True),
    ("levels a bool", "gauss", _levels(lambda v: [True, *v[1:]]), True),
    ("levels not a list", "gauss", _set(levels={"0": 1.0}), True),
    ("thresholds unsorted", "gauss", _thresholds(_swap_first_two), False),
    ("threshold below its cell", "gauss", _thresholds(_move_first(-1.0)), False),
    ("threshold above its cell", "gauss", _thresholds(lambda v: [v[0], v[1] + 0.9, *v[2:]]),
     False),
    ("thresholds one short", "gauss", _thresholds(lambda v: v[:-1]), False),
    ("thresholds a string", "gauss", _thresholds(lambda v: ["0", *v[1:]]), True),
    ("step on a non-uniform table", "gauss", _set(step=0.5), False),
    ("step missing on a uniform table", "hwgq-uniform", _set(step=None), False),
    ("step off the grid", "hwgq-uniform", lambda d: d.update(step=d["step"] * 1.01), False),
    ("step negative", "hwgq-uniform", lambda d: d.update(step=-d["step"]), True),
    ("uniform levels off the grid", "hwgq-uniform",
     _levels(lambda v: [v[0], v[1] * 1.001, *v[2:]]), False),
    ("hwgq first threshold moved", "hwgq-uniform", _thresholds(_move_first(0.1)), False),
    ("hwgq level 0 moved", "hwgq-uniform", _levels(_move_first(-0.1)), False),
    ("hwgq zero threshold non-zero", "hwgq-uniform", _set(zero_threshold=0.1), False),
    ("deadzone first threshold moved", "deadzone", _thresholds(_move_first(0.05)), False),
    ("deadzone without zero threshold", "deadzone", _set(zero_threshold=None), False),
    ("zero threshold under convention none", "gauss", _set(zero_threshold=0.0), False),
]


def _write_json(tmp_path, obj, name="t.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


@pytest.fixture(scope="module")
def schema():
    text = importlib.resources.files("lloydmax").joinpath("schema/table-1.json").read_text()
    return json.loads(text)


def test_the_catalogue_is_wide():
    assert len(CATALOGUE) >= 50
    assert sum(visible for *_, visible in CATALOGUE) >= 20


def test_shipped_schema_is_generated_from_the_format_module(schema):
    assert schema == _format.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("base", ["gauss", "hwgq-uniform", "deadzone"])
def test_valid_tables_pass_every_reader_with_the_same_numbers(tmp_path, schema, base):
    d = _base(base)
    jsonschema.validate(d, schema)
    path = _write_json(tmp_path, d)
    table = lm.load_table(path)
    read = torch_consumer.read_table(path)
    assert read["levels"] == [float(v) for v in table.levels]
    assert read["thresholds"] == [float(v) for v in table.thresholds]
    assert read["bits"] == table.bits and read["convention"] == table.convention


@pytest.mark.parametrize("name,base,mutate,visible", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_every_reader_rejects_the_tampered_file(tmp_path, schema, name, base, mutate, visible):
    d = copy.deepcopy(_base(base))
    mutate(d)
    path = _write_json(tmp_path, d)
    with pytest.raises(lm.InvalidTableError):
        lm.load_table(path)
    with pytest.raises(lm.InvalidTableError):
        torch_consumer.read_table(path)
    if "schema" in d:  # a mapping without one is a bare lookup table (tested below)
        with pytest.raises(lm.InvalidTableError):
            torch_consumer.read_table(d)  # the parsed mapping, as a trainer may pass it
    schema_rejects = not jsonschema.Draft202012Validator(schema).is_valid(d)
    # the schema sees exactly the structural cases; cross-field rules are the readers' job
    assert schema_rejects == visible


ROW_CASES = ("bits too small", "bits too large", "n_levels one more", "kind banana",
             "mse negative", "levels unsorted", "levels repeated", "thresholds unsorted",
             "threshold below its cell", "thresholds one short", "step off the grid",
             "hwgq first threshold moved", "deadzone first threshold moved", "missing mse")


@pytest.mark.parametrize("name,base,mutate,visible",
                         [c for c in CATALOGUE if c[0] in ROW_CASES], ids=list(ROW_CASES))
def test_the_same_tampering_is_rejected_in_csv_and_npz(tmp_path, name, base, mutate, visible):
    """The metadata and the numbers travel separately in CSV and NPZ; tamper with the
    dict, write it in each format by hand, and read it back."""
    d = copy.deepcopy(_base(base))
    mutate(d)
    levels, thresholds = d.pop("levels"), d.pop("thresholds")
    lv = np.array(levels, dtype=np.float64)
    th = np.array(thresholds, dtype=np.float64)
    rows = ["table,index,level,threshold", f"# {_format.SCHEMA} {json.dumps(d)}"]
    for i, level in enumerate(levels):
        thr = repr(thresholds[i]) if i < len(thresholds) else ""
        rows.append(f"0,{i},{level!r},{thr}")
    csv = tmp_path / "t.csv"
    csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(lm.InvalidTableError):
        lm.load_table(csv)
    meta = {"schema": _format.SET_SCHEMA, "version": d.get("version"), "tables": [d]}
    npz = tmp_path / "t.npz"
    np.savez(npz, meta=np.array(json.dumps(meta)), levels_0=lv, thresholds_0=th)
    with pytest.raises(lm.InvalidTableError):
        lm.load_table(npz)


def test_a_bare_lookup_mapping_is_still_accepted_in_memory_but_not_as_a_file(tmp_path):
    bare = {"levels": [0.0, 1.0, 2.0], "thresholds": [0.5, 1.5]}
    assert torch_consumer.read_table(bare)["bits"] == 2
    with pytest.raises(lm.InvalidTableError, match="schema"):
        torch_consumer.read_table(_write_json(tmp_path, bare))
    with pytest.raises(lm.InvalidTableError):
        lm.load_table(_write_json(tmp_path, bare, "b.json"))
