"""The benchmark's workers run and report a time per step (a smoke test: no timing is asserted)."""

import json
import os

import pytest

from conftest import run_script

from rnn_tutorial import article, benchmark


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
    code = article.training_code()
    assert "class SeqSumModDataset" in code and "def train(args, device)" in code
    compile(code, "article", "exec")
    predictor = article.predictor_code()
    assert "def predict(self, x)" in predictor and "args.pt" in predictor
    compile(predictor, "article predictor", "exec")


def test_sweep_throughput_option_reports_runs_per_hour_and_overhead(tmp_path):
    out = run_script("rnn_tutorial/benchmark.py", "--sweep", "--sweep_runs", "2", "--sweep_steps", "200",
                     "--sweep_jobs", "1", "2", "--json", str(tmp_path / "sweep.json"), timeout=300)
    assert out.returncode == 0, out.stderr
    assert "2 workers / 1: " in out.stdout and "runs/hour" in out.stdout
    one, two = json.loads((tmp_path / "sweep.json").read_text())
    assert (one["jobs"], two["jobs"]) == (1, 2) and one["runs"] == two["runs"] == 2
    for r in (one, two):
        assert r["runs_per_hour"] > 0 and 0 <= r["overhead"] < 1
