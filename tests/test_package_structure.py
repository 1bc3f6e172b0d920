"""The package's shape: no import circle among wsol's modules, counting imports inside functions
too (a function-level import hides a circle from Python but not from a reader), and every
method registered with its settings beside it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wsol"


def _modules() -> dict[str, tuple[Path, str]]:
    """Dotted module name -> (file, the package its relative imports resolve against)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            out[".".join(parts)] = (path, ".".join(parts))
        else:
            out[".".join(parts)] = (path, ".".join(parts[:-1]))
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the wsol modules it imports anywhere in its file (`from pkg import sub` counts as
    importing `pkg.sub` where that is a module, else `pkg`)."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, (path, pkg) in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                    full = ".".join(base) + (f".{node.module}" if node.module else "")
                else:
                    full = node.module or ""
                targets = [f"{full}.{a.name}" if f"{full}.{a.name}" in mods else full for a in node.names]
            for name in targets:
                if name.startswith("wsol"):
                    target = resolve(name)
                    if target and target != mod:
                        graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_inside_functions(tmp_path):
    g = import_graph()
    assert "wsol.methods.base" in g["wsol.methods.art"] and "wsol.settings" in g["wsol.methods.art"]
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_methods_carry_their_settings():
    """Each method's settings class is defined in its own module, and the config imports none of
    the method files by name (it reads the registry)."""
    from wsol.methods import list_methods, method_class

    for name in list_methods():
        cls = method_class(name)
        if cls.settings is not None:
            assert cls.settings.__module__ == cls.__module__, name
    config = (PACKAGE / "config.py").read_text(encoding="utf-8")
    for name in list_methods():
        if name != "art":   # ARTConfig is re-exported for old imports (`from wsol.config import ARTConfig`)
            assert f"wsol.methods.{name}" not in config, name


@pytest.mark.parametrize("name", ["has", "acol", "spg", "cutmix"])
def test_new_methods_are_settable_from_the_command_line(name):
    """The registry reaches the config: `--set method.<name>.<key>=...` validates the method's keys."""
    from wsol.config import ConfigError, load_config

    cfg = load_config(None, [f"method.name={name}"])
    assert cfg.method.name == name and getattr(cfg.method, name) is not None
    with pytest.raises(ConfigError, match=f"unknown key 'bogus' in method.{name}; valid keys: "):
        load_config(None, [f"method.name={name}", f"method.{name}.bogus=1"])


def test_models_methods_and_the_step_benchmark_import_without_albumentations():
    """albumentations is imported where a pipeline is built, not with the package: the models, the
    methods and benchmarks/bench_train_step.py run where it is not installed (a lent GPU machine's
    image) and start ~1.5 s sooner."""
    import subprocess
    import sys

    code = ("import sys, wsol.models, wsol.methods, wsol.engine.train, benchmarks.bench_train_step; "
            "print('albumentations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)
    assert out.stdout.strip() == "False"
