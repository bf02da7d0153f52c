"""The README and the documents under rnn_tutorial/docs/: every generated part is what the committed records give,
every relative link and #anchor resolves, and every command in a code block names a script and flags that exist."""

import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT
from rnn_tutorial import generated, study, sweep

DOCUMENTS = generated.documents(ROOT)


def test_the_generated_parts_are_what_the_committed_records_give():
    store = sweep.RecordStore(sweep.DEFAULT_RECORDS)
    parts = study.generated_parts(study.study_from_records(store), store)
    assert generated.differing(parts, ROOT) == []
    shown = [name for path in DOCUMENTS for name in generated.names_in(open(path, encoding="utf-8").read())]
    assert set(shown) == set(parts)  # every part is shown somewhere, and no marker names a part nobody renders
    assert "README.md" in [os.path.relpath(p, ROOT) for p in DOCUMENTS if "reliable" in
                           generated.names_in(open(p, encoding="utf-8").read())]


def test_a_stale_part_is_found_and_rewritten(tmp_path):
    docs = tmp_path / "rnn_tutorial" / "docs"
    docs.mkdir(parents=True)
    (tmp_path / "README.md").write_text("# t\n\n" + generated.block("count", "58 of 58") + "\n\nprose\n")
    (docs / "page.md").write_text(generated.block("count", "58 of 58") + "\n")
    assert generated.differing({"count": "58 of 58"}, tmp_path) == []
    assert generated.differing({"count": "57 of 58"}, tmp_path) == [("README.md", "count"),
                                                                     (os.path.join("rnn_tutorial", "docs", "page.md"),
                                                                      "count")]
    assert generated.write({"count": "57 of 58"}, tmp_path) == ["README.md", os.path.join("rnn_tutorial", "docs",
                                                                                            "page.md")]
    assert "57 of 58" in (tmp_path / "README.md").read_text() and "prose" in (tmp_path / "README.md").read_text()
    assert generated.differing({"count": "57 of 58"}, tmp_path) == []


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors_of(path):
    text = re.sub(r"```.*?```", "", open(path, encoding="utf-8").read(), flags=re.S)
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_the_slug_is_githubs():
    assert slug("6.4 Looking inside: why runs stall, and what the working ones learned") == \
        "64-looking-inside-why-runs-stall-and-what-the-working-ones-learned"
    assert slug("7. Asking the model: predict_cls_rnn.py") == "7-asking-the-model-predict_cls_rnnpy"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_relative_link_and_anchor_resolves(path):
    text = re.sub(r"```.*?```", "", open(path, encoding="utf-8").read(), flags=re.S)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links, "a document without links is not what this test expects"
    broken = []
    for link in links:
        if re.match(r"[a-z]+:", link):  # https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        file = os.path.normpath(os.path.join(os.path.dirname(path), target)) if target else path
        if not os.path.exists(file):
            broken.append(link)
        elif anchor and (not file.endswith(".md") or anchor not in anchors_of(file)):
            broken.append(link)
    assert broken == []


def commands_in(path):
    """Every `python ...` command in a code block of a document (continued lines joined, `$ ` and pipes dropped)."""
    text = open(path, encoding="utf-8").read()
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.removeprefix("$ ").split(" | ")[-1].split("#")[0].strip()
            if line.startswith("python ") and not line.startswith(("python -", "python - ")) or \
                    line.startswith("python -m rnn_tutorial."):
                yield line


def known_flags(script):
    """The flags a script accepts, read from its --help."""
    command = [sys.executable, "-m", script] if "/" not in script and not script.endswith(".py") else \
        [sys.executable, script]
    out = subprocess.run(command + ["--help"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, f"{script} --help: {out.stderr}"
    return set(re.findall(r"(--[a-z_]+)", out.stdout))


def test_every_command_in_a_code_block_names_a_script_and_flags_that_exist():
    commands = [(os.path.relpath(path, ROOT), line) for path in DOCUMENTS for line in commands_in(path)]
    assert len(commands) > 30
    flags, wrong = {}, []
    for where, line in commands:
        words = shlex.split(line)
        script = words[2] if words[1] == "-m" else words[1]
        if words[1] != "-m" and not os.path.isfile(os.path.join(ROOT, script)):
            wrong.append(f"{where}: {line} (no such script)")
            continue
        if script not in flags:
            flags[script] = known_flags(script)
        unknown = [w for w in words if w.startswith("--") and w.split("=")[0] not in flags[script]]
        if unknown:
            wrong.append(f"{where}: {line} (unknown {', '.join(unknown)})")
    assert wrong == []
