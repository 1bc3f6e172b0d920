"""The command-line surface: console scripts resolve to package functions, tools/ and benchmarks/
import the installed package (no sys.path edits), and two console scripts answer --help."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def test_every_tool_has_a_console_script():
    targets = {value.split(":")[0].rsplit(".", 1)[-1] for value in SCRIPTS.values()}
    assert targets == {p.stem for p in (REPO / "tools").glob("*.py")}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_console_script_resolves_to_a_package_function(name):
    module, _, attr = SCRIPTS[name].partition(":")
    assert module.startswith(("wsol.cli.", "segmentation.cli.")), module
    assert callable(getattr(importlib.import_module(module), attr))


def test_no_sys_path_edits_in_tools_or_benchmarks():
    offenders = [str(p.relative_to(REPO)) for folder in ("tools", "benchmarks") for p in (REPO / folder).glob("*.py")
                 if "sys.path.insert" in p.read_text()]
    assert offenders == []


def test_benchmark_imported_by_path_finds_its_record_helper(monkeypatch):
    # run as a script, benchmarks/ is sys.path[0]; imported by path, benchmarks._record is used
    # (the repo root is on sys.path under `python -m pytest` from the root; made sure of here)
    monkeypatch.syspath_prepend(str(REPO))
    spec = importlib.util.spec_from_file_location("wsol_table_by_path", REPO / "benchmarks" / "wsol_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert callable(mod.append_entry) and callable(mod.config_from_args)


def test_wsol_cli_does_not_import_segmentation():
    modules = sorted(p.stem for p in (REPO / "wsol" / "cli").glob("*.py") if p.stem != "__init__")
    code = "import sys\n" + "".join(f"import wsol.cli.{m}\n" for m in modules) + \
           "assert not any(m.split('.')[0] == 'segmentation' for m in sys.modules), 'segmentation imported'\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("name", ["art-wsol-check-dataset", "art-wsol-make-synthetic-cub"])
def test_console_script_help(name, tmp_path):
    exe = Path(sys.executable).parent / name
    if not exe.is_file():
        pytest.fail(f"{exe} not installed: run pip install --no-deps -e . after changing [project.scripts]")
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: {name}")
