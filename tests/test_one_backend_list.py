"""The backend registry (kernels/lif/backends.py) is the only list of backend names: code and
tests derive theirs from it (FUSED_BACKENDS, BACKENDS, runnable), so a new backend is tested and
offered everywhere without edits elsewhere. A literal list, tuple or set of two or more backend
names (and no other strings: ("auto", "cpu", "cuda") is a list of devices), or a message spelling
such a list, is a second list that goes stale."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from kernels import BACKENDS

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "kernels" / "lif" / "backends.py"
FOLDERS = ("kernels", "snn", "tests", "bench", "reproduce", "tools")
NAMES = set(BACKENDS)
_QUOTED = "|".join(sorted(NAMES))
# two quoted backend names in a row inside a string: "('torch', 'cpu' or 'triton')"
SPELLED = re.compile(rf"""['"]({_QUOTED})['"],? (or |and )?['"]({_QUOTED})['"]""")


def hand_written_lists(source: str) -> list[int]:
    """Line numbers of sequence literals whose strings are two or more backend names and nothing
    else, and of string constants that spell such a list."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            strings = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(strings) >= 2 and set(strings) <= NAMES:
                lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SPELLED.search(node.value):
            lines.append(node.lineno)
    return lines


def test_the_scanner_finds_what_it_looks_for():
    assert hand_written_lists('x = ["naive", "torch"]\n') == [1]
    assert hand_written_lists('for b in ("torch", "triton", *extra): pass\n') == [1]
    assert hand_written_lists('msg = "a fused backend (\'auto\', \'torch\', \'cpu\' or \'triton\')"\n') == [1]
    assert hand_written_lists('x = ("torch", "compile")\ny = "the torch backend"\nz = ("auto", "cpu", "cuda")\n') == []


def test_no_hand_written_backend_list_outside_the_registry():
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path in (REGISTRY, Path(__file__).resolve()):  # the registry; this file's own examples
                continue
            found += [f"{path.relative_to(ROOT)}:{line}" for line in hand_written_lists(path.read_text())]
    assert not found, f"hand-written backend lists (derive them from kernels/lif/backends.py): {found}"
