"""The code's shape: no import cycle anywhere, the scripts load none of the audit, one fixpoint engine, and the
training loop the size of the article's."""

import ast
import glob
import os
import subprocess
import sys

import pytest

from conftest import ROOT


def project_modules():
    """{dotted name: path} for the two scripts and every module under rnn_tutorial/."""
    found = {"train_cls_rnn": os.path.join(ROOT, "train_cls_rnn.py"),
             "predict_cls_rnn": os.path.join(ROOT, "predict_cls_rnn.py")}
    for path in glob.glob(os.path.join(ROOT, "rnn_tutorial", "**", "*.py"), recursive=True):
        parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path, modules):
    """The project modules a file imports anywhere in it (inside functions too), from its source."""
    wanted = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        wanted |= {name for name in names if name in modules}
    return wanted


def find_cycle(graph):
    """One cycle of the graph as a list of nodes (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_anywhere():
    modules = project_modules()
    graph = {name: imports_of(path, modules) - {name} for name, path in modules.items()}
    assert "rnn_tutorial.beam" in graph["rnn_tutorial.hardening"]  # the graph sees real imports
    assert "predict_cls_rnn" in graph["rnn_tutorial.audit.__main__"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("script", ["train_cls_rnn", "predict_cls_rnn"])
def test_the_scripts_load_no_part_of_the_audit(script):
    code = f"import sys, {script}; print(' '.join(sorted(m for m in sys.modules if m.startswith('rnn_tutorial'))))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    names = loaded.stdout.split()
    assert "rnn_tutorial.runs" in names  # the project's modules are seen
    assert not [name for name in names if name == "rnn_tutorial.audit" or name.startswith("rnn_tutorial.audit.")]


def test_every_proof_runs_on_the_one_fixpoint_engine_and_the_audits_modules_stay_small():
    audit = glob.glob(os.path.join(ROOT, "rnn_tutorial", "audit", "*.py"))
    holding = [os.path.basename(p) for p in audit for text in [open(p).read()]
               if "no fixpoint within" in text or "fixpoint after" in text]
    assert holding == ["fixpoint.py"]
    assert max(len(open(p).read().splitlines()) for p in audit) <= 300


def test_the_training_script_reads_like_the_articles():
    source = open(os.path.join(ROOT, "train_cls_rnn.py")).read()
    tree = ast.parse(source)
    top = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    assert top["train"].end_lineno - top["train"].lineno + 1 <= 100
    assert len(source.splitlines()) <= 420 and top["RnnClsNet"].lineno < 200
