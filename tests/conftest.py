import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

import lloydmax as lm

DATA = Path(__file__).parent / "data"

# Every run, local or CI, draws the same examples (derandomized, no example database), so
# that the README's test command is reproducible and a stored example cannot make a rerun
# fail.  HYPOTHESIS_PROFILE=explore opts in to random exploration with the database; a
# failure it finds becomes an explicit regression test (see tests/test_data.py).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def published():
    with open(DATA / "published.json") as fh:
        return json.load(fh)


@pytest.fixture(scope="session", autouse=True)
def private_table_cache(tmp_path_factory):
    """``lloydmax solve`` caches tables on disk: point it (and every subprocess) at a
    session temp dir, so no test reads or fills the user's ~/.cache/lloydmax."""
    saved = {k: os.environ.get(k) for k in ("LLOYDMAX_CACHE_DIR", "LLOYDMAX_CACHE")}
    os.environ["LLOYDMAX_CACHE_DIR"] = str(tmp_path_factory.mktemp("lloydmax-cache"))
    os.environ.pop("LLOYDMAX_CACHE", None)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session", autouse=True)
def warm_jit():
    """Compile (or load from cache) the kernels once, so hypothesis deadlines see warm code."""
    lm.solve(bits=2)
    lm.solve(bits=2, uniform=True)
    lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)
    lm.solve(bits=2, dist="laplace")
    lm.solve_data([0.0, 1.0, 2.0, 3.0], bits=1)
