"""The experiment runner and the figures: a quick real run, and figures from hand-made results."""

import json
import os


from conftest import run_script

from rnn_tutorial import figures, reproduce

PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ["rnn_net.png", "packing.png", "lr_schedules.png", "accuracy_curves.png", "accuracy_by_length.png",
           "early_loss.png"]


def quick_reproduce(out_dir, *extra):
    return run_script("rnn_tutorial/reproduce.py", "--runs", "baseline", "large_batch", "--seeds", "1",
                      "--total_steps", "300", "--jobs", "2", "--swanlab_mode", "disabled", "--out", str(out_dir),
                      "--records", str(out_dir / "records"), *extra, timeout=300)


def test_quick_reproduce_writes_results_and_figures(tmp_path):
    out = quick_reproduce(tmp_path / "a")
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["meta"]["test_samples"] >= 10000
    runs = results["runs"]
    assert [(r["run_name"], r["seed"]) for r in runs] == [("baseline", 1), ("large_batch", 1)]
    for run in runs:
        assert run["flags"]["total_steps"] == 300 and run["flags"]["seed"] == 1
        assert run["flags"]["batch_size"] == (16 if run["run_name"] == "baseline" else 64)
        assert [p["step"] for p in run["eval_curve"]] == [300]
        assert set(run["eval_curve"][0]) == {"step", "loss", "accuracy", "accuracy_long"}
        assert sorted(map(int, run["accuracy_by_length"])) == list(range(1, 51))
        assert set(run["accuracy_longer"]) == {"6-10", "11-20", "21-50"}
        assert 0 <= run["test_accuracy"] <= 1 and run["converged"] == (run["test_accuracy"] >= 0.99)
        assert run["wall_time_s"] > 0
    for name in FIGURES:
        assert (tmp_path / "a" / name).read_bytes().startswith(PNG)
    assert "| baseline |" in out.stdout and "first step at ≥20%" in out.stdout  # the summary tables
    table = run_script("rnn_tutorial/reproduce.py", "--table", "--runs", "baseline", "large_batch", "--seeds", "1",
                       "--total_steps", "300", "--records", str(tmp_path / "a" / "records"))
    assert table.returncode == 0 and table.stdout.strip() in out.stdout  # reprinted from the records alone
    # same arguments, same numbers, and --no_figures: test_sweep.py (two executions on two clusters compared)


def test_bad_arguments_exit_2(tmp_path):
    out = run_script("rnn_tutorial/reproduce.py", "--runs", "sota_warmup", "--total_steps", "1000",
                     "--out", str(tmp_path))
    assert out.returncode == 2 and "2000 warmup steps of sota_warmup" in out.stderr
    out = run_script("rnn_tutorial/reproduce.py", "--runs", "nonsense", "--out", str(tmp_path))
    assert out.returncode == 2 and "Traceback" not in out.stderr


def hand_made_results():
    def run(name, seed, final):
        curve = [{"step": s, "loss": 2.3 - final * s / 1000, "accuracy": final * s / 1000, "accuracy_long": 0.1}
                 for s in (500, 1000)]
        return {
            "run_name": name, "seed": seed, "flags": {"min_seq_len": 2, "max_seq_len": 5, "max_number": 9},
            "wall_time_s": 1.0, "eval_curve": curve,
            "train_curve": [{"step": s, "loss": 2.0, "lr": 0.001} for s in (100, 200)],
            "test_accuracy": final, "accuracy_by_length": {str(n): final / n for n in range(1, 51)},
            "accuracy_longer": {"6-10": 0.5, "11-20": 0.3, "21-50": 0.1}, "converged": final >= 0.99,
        }
    return {"meta": {}, "runs": [run("sota", 1, 0.5), run("sota", 2, 1.0), run("sota_warmup", 1, 1.0)]}


def test_figures_from_hand_made_results(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(hand_made_results()))
    written = figures.draw_all(str(path), str(tmp_path / "figs"))
    assert [os.path.basename(p) for p in written] == FIGURES
    for p in written:
        assert open(p, "rb").read(8) == PNG and os.path.getsize(p) > 5000


def test_summary_table_from_hand_made_results():
    table = reproduce.markdown_table(hand_made_results()["runs"])
    sota = next(line for line in table.splitlines() if line.startswith("| sota |"))
    assert "75.0% ± 35.4" in sota and "50.0 100.0" in sota and "1 of 2" in sota
    assert "converges in 1 run of 3" in sota  # the article's claim sits beside ours


def test_extrapolation_table_lists_only_converged_runs():
    table = reproduce.extrapolation_table(hand_made_results()["runs"], lengths=(1, 10))
    rows = table.splitlines()[2:]
    assert rows == ["| sota | 2 | 100.0% | 10.0% |", "| sota_warmup | 1 | 100.0% | 10.0% |"]


def test_target_table_counts_seeds_right_at_2_to_5_and_at_21_to_50():
    runs = hand_made_results()["runs"]
    runs[1] = dict(runs[1], accuracy_longer={"6-10": 1.0, "11-20": 1.0, "21-50": 0.995})  # sota seed 2 extrapolates
    rows = {line.split(" | ")[0]: line for line in reproduce.target_table(runs).splitlines()[2:]}
    assert rows["| sota"].startswith("| sota | 1 of 2 | 1 of 2 | 54.8% (10.0%) | never |")  # median of 1k, never
    assert rows["| sota_warmup"].startswith("| sota_warmup | 1 of 1 | 0 of 1 | 10.0% (10.0%) | 1k |")
