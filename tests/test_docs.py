"""The documentation site builds strictly (every page in the nav exists, every link resolves)."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_build_strict(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                          "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "schema" / "table-1.json").exists()


def test_shipped_schema_copy_is_current():
    assert (ROOT / "docs/schema/table-1.json").read_text() == \
        (ROOT / "lloydmax/schema/table-1.json").read_text()
