"""The benchmark's workers run and report a time per step (a smoke test: no timing is asserted)."""

import json
import os
import sys

import pytest

from conftest import ROOT, run_script

sys.path.insert(0, os.path.join(ROOT, "rnn_tutorial"))
import benchmark  # noqa: E402


@pytest.mark.parametrize("kind", ["ours", "bare", "article"])
def test_worker_reports_ms_per_step(kind):
    if kind == "article" and not os.path.isfile(benchmark.DEFAULT_ARTICLE):
        pytest.skip("the article (../shared/seeds/article_zh.md) is not beside this checkout")
    out = run_script("rnn_tutorial/benchmark.py", "--worker", kind, "--config", "default", "--steps", "2100")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["ms_per_step"] > 0


def test_the_article_script_is_found_in_the_article():
    if not os.path.isfile(benchmark.DEFAULT_ARTICLE):
        pytest.skip("the article is not beside this checkout")
    code = benchmark.article_training_code(benchmark.DEFAULT_ARTICLE)
    assert "class SeqSumModDataset" in code and "def train(args, device)" in code
    compile(code, "article", "exec")
