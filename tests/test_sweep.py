"""The sweep engine: real Dask schedulers and workers on 127.0.0.1, real subprocesses, real signals."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT, default_ctrl_c, run_script

from rnn_tutorial import scoring, sweep

TINY = ["--runs", "baseline", "large_batch", "--seeds", "2", "--total_steps", "200", "--swanlab_mode", "disabled",
        "--no_figures"]


def record_files(records):
    return sorted(p for p in (records / "reproduce").rglob("seed*.json"))


def numbers(record):
    """A record without what legitimately differs between two executions of one run."""
    return {k: v for k, v in record.items() if k not in ("wall_time_s", "env")}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The tiny sweep (2 experiments x 2 seeds) on a local cluster of two workers."""
    base = tmp_path_factory.mktemp("local")
    out = run_script("rnn_tutorial/reproduce.py", *TINY, "--jobs", "2", "--records", str(base / "records"),
                     "--out", str(base / "out"), timeout=240)
    assert out.returncode == 0, out.stderr
    return base, out


# ---------------------------------------------------------------- seeds and identity


@pytest.mark.parametrize("given, seeds", [
    (["5"], [1, 2, 3, 4, 5]), (["11-14"], [11, 12, 13, 14]), (["7", "11", "1001"], [7, 11, 1001]),
    (["3-4", "9"], [3, 4, 9]), (["1,2"], [1, 2]), ("2 2", [2]),
])
def test_seeds_count_range_or_list(given, seeds):
    assert sweep.parse_seeds(given) == seeds


@pytest.mark.parametrize("seeds, described", [
    ([1, 2, 3], "1-3"), ([4], "4"), ([1, 2], "1-2"), ([1, 2, 3, 5, 7, 8, 9], "1-3, 5, 7-9"), ([2, 9, 10, 11, 12], "2, 9-12"),
])
def test_seeds_are_described_as_ranges_and_read_back(seeds, described):
    assert sweep.describe_seeds(seeds) == described
    if len(seeds) > 1:  # what a table says can be given to --seeds as it is (one number alone is a count there)
        assert sweep.parse_seeds(described.split()) == seeds


@pytest.mark.parametrize("given", [["0"], ["5-3"], ["x"], ["1-"], ["-3"], []])
def test_bad_seeds_are_refused(given):
    with pytest.raises(ValueError):
        sweep.parse_seeds(given)


def test_bad_seeds_on_the_command_line_exit_2(tmp_path):
    out = run_script("rnn_tutorial/reproduce.py", "--seeds", "9-3", "--records", str(tmp_path))
    assert out.returncode == 2 and "--seeds: the range 9-3 is empty" in out.stderr and "Traceback" not in out.stderr


def test_identity_ignores_output_flags_and_defaults():
    (task,) = scoring.make_tasks(["sota"], [3])
    config = sweep.task_config(task)
    assert sweep.identity(config) == {"hidden_dim": 32, "num_layers": 3, "batch_size": 64, "lr": 0.005, "seed": 3}
    moved = dict(config, save_dir="/elsewhere", run_name="other", swanlab_mode="local", save_every=7)
    assert sweep.identity(moved) == sweep.identity(config)
    older = {k: v for k, v in config.items() if k not in ("grad_clip", "rnn_type")}  # written before those flags
    assert sweep.identity(older) == sweep.identity(config)
    assert sweep.identity(dict(config, total_steps=300)) != sweep.identity(config)
    assert sweep.flags_slug(config) == "batch_size=64,hidden_dim=32,lr=0.005,num_layers=3"


def test_the_committed_records_are_found_for_the_article_experiments():
    store = sweep.RecordStore()
    tasks = scoring.make_tasks(["baseline", "sota_warmup"], [1, 2, 3, 4, 5])
    found = {t: store.load(t) for t in tasks}
    assert all(found.values())
    assert {(r["run_name"], r["seed"]) for r in found.values()} == {(t.name, t.seed) for t in tasks}


# ---------------------------------------------------------------- sweeps


def test_tiny_sweep_records_each_run_and_a_second_invocation_reruns_nothing(local_sweep):
    base, first = local_sweep
    files = record_files(base / "records")
    assert [f"{p.parent.name}/{p.name}" for p in files] == [
        "batch_size=64,total_steps=200/seed1.json", "batch_size=64,total_steps=200/seed2.json",
        "total_steps=200/seed1.json", "total_steps=200/seed2.json"]
    assert first.stdout.count(" seed ") >= 4 and "local Dask cluster of 2 worker processes on 127.0.0.1" in first.stdout
    stamps = {p: p.stat().st_mtime_ns for p in files}
    results = json.loads((base / "out" / "results.json").read_text())
    assert [(r["run_name"], r["seed"]) for r in results["runs"]] == [
        ("baseline", 1), ("baseline", 2), ("large_batch", 1), ("large_batch", 2)]
    assert results["runs"][0] == {**json.loads(files[2].read_text()), "run_name": "baseline"}
    assert not list((base / "out").glob("*.png"))  # --no_figures

    again = run_script("rnn_tutorial/reproduce.py", *TINY, "--records", str(base / "records"),
                       "--out", str(base / "again"), timeout=120)
    assert again.returncode == 0, again.stderr
    assert "4 of 4 runs already recorded" in again.stdout and "Dask cluster" not in again.stdout
    assert {p: p.stat().st_mtime_ns for p in record_files(base / "records")} == stamps
    assert json.loads((base / "again" / "results.json").read_text())["runs"] == results["runs"]


def test_results_are_identical_in_process_and_in_a_worker(local_sweep):
    base, _ = local_sweep
    (task,) = scoring.make_tasks(["large_batch"], [2], total_steps=200)
    in_process = scoring.run_one(**task.payload())
    stored = sweep.RecordStore(str(base / "records")).load(task)
    assert numbers(in_process) == numbers(stored)


def test_sigint_keeps_finished_runs_and_a_rerun_completes_the_rest(tmp_path):
    records = tmp_path / "records"
    command = [sys.executable, "-u", os.path.join(ROOT, "rnn_tutorial/reproduce.py"), "--runs", "baseline",
               "--seeds", "3", "--total_steps", "1500", "--swanlab_mode", "disabled", "--no_figures", "--jobs", "1",
               "--records", str(records), "--out", str(tmp_path / "out")]
    log = tmp_path / "log"
    with open(log, "w") as sink:  # its own process group, so that SIGINT reaches it and its workers, as Ctrl-C does
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=default_ctrl_c)
    deadline = time.monotonic() + 120
    while "[1/3]" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=60) == 130
    text = log.read_text()
    assert "Interrupted: 1 of 3 runs are recorded" in text and "To resume, run the same command again" in text
    assert "Traceback" not in text
    kept = record_files(records)
    assert len(kept) == 1
    first = kept[0].read_text()

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    assert "1 of 3 runs already recorded" in rerun.stdout and "running the other 2" in rerun.stdout
    assert len(record_files(records)) == 3 and kept[0].read_text() == first


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failing_run_and_a_dying_worker_are_reported_and_the_others_are_recorded(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("SwanLab cannot make its log folder under a file")
    good = scoring.make_tasks(["baseline"], [1, 2], total_steps=200)
    raising = scoring.make_tasks(["large_batch"], [1], total_steps=200, swanlab_mode="local",
                                   swanlab_dir=str(not_a_folder / "swanlog"))
    dying = [sweep.Task("sweep_fixtures:kill_my_worker", "dies", 1)]
    store = sweep.RecordStore(str(tmp_path / "records"))
    result = sweep.run_sweep(good + raising + dying, store, scoring.describe_run, jobs=2, progress="lines")
    assert set(result.records) == set(good) and result.new == 2
    errors = dict(result.failures)
    assert set(errors) == {raising[0], dying[0]}
    assert "SwanLab could not start" in errors[raising[0]] and "KilledWorker" in errors[dying[0]]
    assert all(store.load(t) for t in good) and store.load(raising[0]) is None
    for pid in {store.load(t)["env"]["worker_pid"] for t in good}:  # the local workers are gone, not orphaned
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(SystemExit) as stop:
        sweep.exit_if_failed(result)
    assert stop.value.code == 1


def test_a_separate_scheduler_and_worker_give_the_same_records(local_sweep, tmp_path):
    base, _ = local_sweep
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the worker gets the code by upload
    cwd = tmp_path / "node"
    cwd.mkdir()
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                 cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1",
                               "--no-dashboard"], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = run_script("rnn_tutorial/reproduce.py", *TINY, "--scheduler", address, "--records",
                         str(tmp_path / "records"), "--out", str(tmp_path / "out"), timeout=240)
        assert out.returncode == 0, out.stderr
        assert f"the Dask cluster at {address} (1 workers)" in out.stdout
    finally:
        for process in (worker, scheduler):
            os.kill(process.pid, signal.SIGTERM)
        for process in (worker, scheduler):
            process.wait(timeout=30)
    remote, local = record_files(tmp_path / "records"), record_files(base / "records")
    assert [p.relative_to(tmp_path / "records") for p in remote] == [p.relative_to(base / "records") for p in local]
    for a, b in zip(remote, local):
        assert numbers(json.loads(a.read_text())) == numbers(json.loads(b.read_text()))
    assert not (cwd / "rnn_tutorial").exists()  # the code came by upload, not from a checkout


def test_an_unreachable_scheduler_is_one_error_line(tmp_path):
    out = run_script("rnn_tutorial/reproduce.py", *TINY, "--scheduler", f"tcp://127.0.0.1:{free_port()}",
                     "--records", str(tmp_path / "records"), "--out", str(tmp_path), timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: cannot join the Dask scheduler at tcp://127.0.0.1:")


def test_recheck_compares_numbers_and_flags_by_identity():
    old = {"flags": {"hidden_dim": 32, "seed": 1}, "test_accuracy": 0.5, "wall_time_s": 3}
    new = {"flags": {"hidden_dim": 32, "seed": 1, "init": "default"}, "test_accuracy": 0.5, "wall_time_s": 4,
           "env": {}}
    assert sweep.compare_records(old, new) == "identical to the stored record"
    assert sweep.compare_records(old, dict(new, test_accuracy=0.6)) == "DIFFERS in test_accuracy"
    assert "flags" in sweep.compare_records(old, dict(new, flags={"hidden_dim": 16, "seed": 1}))
