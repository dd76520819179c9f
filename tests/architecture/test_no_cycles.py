"""No import cycle among the modules of one package, whether at module level or hidden in a function
(grimp reads both). The rules between packages are import-linter's contracts (pyproject.toml)."""

from __future__ import annotations

import grimp

PACKAGES = ("kernel", "gateway", "faces", "stamping", "outbox", "tenants", "issuer", "billing")


def _cycles(graph) -> list[list[str]]:
    modules = [m for m in graph.modules if ".migrations" not in m]
    same = {
        m: [i for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] == m.split(".")[0]]
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in same.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_package_has_an_import_cycle():
    assert _cycles(grimp.build_graph(*PACKAGES)) == []


def test_the_check_sees_a_cycle_hidden_in_a_function(tmp_path, monkeypatch):
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "__init__.py").write_text("")
    (tmp_path / "loop" / "a.py").write_text("from loop import b\n")
    (tmp_path / "loop" / "b.py").write_text("def f():\n    from loop import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _cycles(grimp.build_graph("loop", cache_dir=None)) == [["loop.a", "loop.b"]]
