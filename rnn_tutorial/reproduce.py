"""Re-run the article's experiments over several seeds and record what reproduces.

Every run calls train() from train_cls_rnn.py with the article's exact flags,
then scores the final model on fixed test sets: 10,000 sequences at the trained
lengths, and 1,000 sequences at each length from 1 to 50 (to see how far it
extrapolates). One record per run and seed goes to OUT/results.json; the
figures are then redrawn from it (rnn_tutorial/figures.py).

    python rnn_tutorial/reproduce.py                         # everything (about 15 min on 2 cores)
    python rnn_tutorial/reproduce.py --runs baseline sota --seeds 3
    python rnn_tutorial/reproduce.py --total_steps 2000      # a quick look
    swanlab watch ./swanlog                                  # all runs side by side

The same arguments give the same numbers again (wall times aside).
"""

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import train_cls_rnn  # noqa: E402  (the one definition of data, model and training)

SOTA = ["--hidden_dim", "32", "--num_layers", "3", "--batch_size", "64", "--lr", "0.005"]

# name: (flags, what the article claims; None for runs beyond the article)
EXPERIMENTS = {
    "baseline": ([], "about 75%, with a sudden jump near step 4k"),
    "large_batch": (["--batch_size", "64"], "smoother loss, lower accuracy than baseline"),
    "large_batch_lr5e-3": (["--batch_size", "64", "--lr", "0.005"], "91%"),
    "deeper_rnn": (["--hidden_dim", "32", "--num_layers", "3"], "97-99%"),
    "sota": (SOTA, "unstable: 1 of 3 runs converged"),
    "sota_warmup": (SOTA + ["--warmup_step", "2000"], "100%, 3 of 3 converge; right beyond length 10"),
    "sota_clip": (SOTA + ["--grad_clip", "1.0"], None),
    "sota_gru": (SOTA + ["--rnn_type", "gru"], None),
    "sota_lstm": (SOTA + ["--rnn_type", "lstm"], None),
}

TEST_SAMPLES = 10_000  # at the trained lengths
PER_LENGTH_SAMPLES = 1_000  # at each length 1..MAX_TEST_LENGTH
MAX_TEST_LENGTH = 50
LENGTH_BUCKETS = [(6, 10), (11, 20), (21, 50)]
CONVERGED = 0.99
TEST_SEED = 3_000_017  # test sets: fixed, and apart from training and periodic evaluation


# ----------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------

_test_sets = {}


def quiet_worker():
    """Pool initializer: SwanLab's banners from many workers would bury the progress lines."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)


def test_set(min_len, max_len, num_samples, max_number):
    key = (min_len, max_len, num_samples, max_number)
    if key not in _test_sets:  # built once per worker process
        _test_sets[key] = train_cls_rnn.make_eval_set(
            num_samples, min_len, max_len, max_number, seed=TEST_SEED + 1000 * min_len + max_len
        )
    return _test_sets[key]


def score(model, config):
    """Final accuracy at the trained lengths, at each length 1..50, and per longer bucket."""
    device = train_cls_rnn.resolve_device(config.get("device", "cpu"))
    lo, hi, n = config["min_seq_len"], config["max_seq_len"], config["max_number"]
    _, test_accuracy = train_cls_rnn.evaluate(model, test_set(lo, hi, TEST_SAMPLES, n), device)
    by_length = {
        length: train_cls_rnn.evaluate(model, test_set(length, length, PER_LENGTH_SAMPLES, n), device)[1]
        for length in range(1, MAX_TEST_LENGTH + 1)
    }
    return {
        "test_accuracy": test_accuracy,
        "accuracy_by_length": {str(k): v for k, v in by_length.items()},
        "accuracy_longer": {
            f"{a}-{b}": statistics.fmean(by_length[k] for k in range(a, b + 1)) for a, b in LENGTH_BUCKETS
        },
        "converged": test_accuracy >= CONVERGED,
    }


def train_experiment(name, seed, total_steps=None, swanlab_mode="disabled", swanlab_dir="./swanlog"):
    """train() one (experiment, seed) with the article's flags; checkpoints go to a temporary folder."""
    flags, _ = EXPERIMENTS[name]
    with tempfile.TemporaryDirectory() as save_dir:
        argv = flags + [
            "--seed", str(seed), "--run_name", f"{name}-seed{seed}", "--save_dir", save_dir,
            "--save_every", "0", "--swanlab_mode", swanlab_mode, "--swanlab_dir", swanlab_dir,
            "--swanlab_project", "tutorial_with_rnn_reproduce",
        ] + (["--total_steps", str(total_steps)] if total_steps else [])
        return train_cls_rnn.train(train_cls_rnn.parse_args(argv), progress="none")


def run_one(task):
    """Train one (experiment, seed) and score it; returns its results.json record."""
    name, seed, total_steps, swanlab_mode, swanlab_dir = task
    result = train_experiment(name, seed, total_steps, swanlab_mode, swanlab_dir)
    model, config = result["model"], result["config"]
    scores = score(model, config)
    flags_only = {k: v for k, v in config.items() if k not in ("save_dir", "swanlab_dir", "swanlab_mode")}
    return {
        "run_name": name,
        "seed": seed,
        "flags": flags_only,
        "wall_time_s": round(result["wall_time_s"], 2),
        "eval_curve": [
            {"step": r["step"], "loss": r["eval_loss"], "accuracy": r["accuracy"], "accuracy_long": r["accuracy_long"]}
            for r in result["history"]
        ],
        "train_curve": result["train_curve"],
        **scores,
    }


# ----------------------------------------------------------------------------
# Summary table (markdown), from results.json records
# ----------------------------------------------------------------------------


def first_step_reaching(record, accuracy):
    """The first evaluation step at which a run's accuracy reached the given level, or None."""
    return next((p["step"] for p in record["eval_curve"] if p["accuracy"] >= accuracy), None)


def summary_rows(records):
    """One row per experiment: claim, mean ± std, each seed, converged k/K, longer lengths."""
    rows = []
    for name in EXPERIMENTS:
        runs = sorted((r for r in records if r["run_name"] == name), key=lambda r: r["seed"])
        if not runs:
            continue
        accs = [r["test_accuracy"] for r in runs]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        longer = {b: statistics.fmean(r["accuracy_longer"][b] for r in runs) for b in runs[0]["accuracy_longer"]}
        rows.append({
            "run_name": name,
            "claim": EXPERIMENTS[name][1] or "(not in the article)",
            "mean": statistics.fmean(accs),
            "std": std,
            "seeds": [(r["seed"], r["test_accuracy"]) for r in runs],
            "converged": sum(r["converged"] for r in runs),
            "runs": len(runs),
            "longer": longer,
            "wall_time_s": statistics.fmean(r["wall_time_s"] for r in runs),
        })
    return rows


def markdown_table(records):
    rows = summary_rows(records)
    if not rows:
        return ""
    buckets = list(rows[0]["longer"])
    head = ("| run | the article's claim | our accuracy, mean ± std | each seed | converged (≥99%) | "
            + " | ".join(f"lengths {b}" for b in buckets) + " | training time per run |")
    lines = [head, "|" + "---|" * (6 + len(buckets))]
    for row in rows:
        seeds = " ".join(f"{100 * a:.1f}" for _, a in row["seeds"])
        longer = " | ".join(f"{100 * row['longer'][b]:.1f}%" for b in buckets)
        lines.append(
            f"| {row['run_name']} | {row['claim']} | {100 * row['mean']:.1f}% ± {100 * row['std']:.1f} | "
            f"{seeds} | {row['converged']} of {row['runs']} | {longer} | {row['wall_time_s']:.0f} s |"
        )
    return "\n".join(lines)


def dynamics_table(records, late_from=10_000):
    """When each seed first reached 20% and 50%, and how noisy its training loss was late on."""
    def steps(run, level):
        step = first_step_reaching(run, level)
        return "never" if step is None else f"{step / 1000:g}k"

    lines = ["| run | first step at ≥20%, each seed | first step at ≥50%, each seed | "
             f"std of the logged batch loss after step {late_from // 1000}k, each seed |", "|---|---|---|---|"]
    for name in EXPERIMENTS:
        runs = sorted((r for r in records if r["run_name"] == name), key=lambda r: r["seed"])
        if not runs:
            continue
        noise = []
        for run in runs:
            late = [p["loss"] for p in run["train_curve"] if p["step"] > late_from]
            noise.append(f"{statistics.stdev(late):.2f}" if len(late) > 1 else "-")
        lines.append(f"| {name} | {' '.join(steps(r, 0.2) for r in runs)} | {' '.join(steps(r, 0.5) for r in runs)} "
                     f"| {' '.join(noise)} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------


def relative_cost(name):
    """Rough cost of a run, to start the longest ones first."""
    flags = EXPERIMENTS[name][0]
    return (2 if "--batch_size" in flags else 1) * (2 if "--num_layers" in flags else 1) * (
        3 if "--rnn_type" in flags else 1
    )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Re-run the article's experiments over several seeds.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", nargs="+", choices=list(EXPERIMENTS), default=list(EXPERIMENTS),
                   metavar="NAME", help=f"experiments to run, from: {' '.join(EXPERIMENTS)}")
    p.add_argument("--seeds", type=int, default=5, help="seeds per experiment (seeds 1..K)")
    p.add_argument("--total_steps", type=int, default=None,
                   help="override the article's 20000 steps (a quick look; not comparable to the article)")
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="parallel worker processes (1 torch thread each)")
    p.add_argument("--out", default=HERE, help="folder for results.json and the figures")
    p.add_argument("--swanlab_mode", choices=["local", "offline", "disabled"], default="local",
                   help="SwanLab logging of every run (project tutorial_with_rnn_reproduce)")
    p.add_argument("--swanlab_dir", default="./swanlog", help="where SwanLab writes its logs")
    p.add_argument("--no_figures", action="store_true", help="write results.json only")
    p.add_argument("--table", action="store_true",
                   help="only print the summary tables of the results.json already in --out (no training)")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds must be at least 1 (got {args.seeds})")
    if args.jobs < 1:
        p.error(f"--jobs must be at least 1 (got {args.jobs})")
    for name in args.runs if args.total_steps is not None else []:
        run_args = train_cls_rnn.parse_args(EXPERIMENTS[name][0])
        if args.total_steps <= run_args.warmup_step:
            p.error(f"--total_steps must exceed the {run_args.warmup_step} warmup steps of {name}")
    return args


def extrapolation_table(records, lengths=(1, 5, 6, 8, 10, 11, 15, 20, 30, 50)):
    """Accuracy at single lengths for the runs that converged at the trained lengths."""
    lines = ["| converged run | seed | " + " | ".join(f"length {n}" for n in lengths) + " |",
             "|---|---|" + "---|" * len(lengths)]
    for run in records:
        if run["converged"]:
            cells = " | ".join(f"{100 * run['accuracy_by_length'][str(n)]:.1f}%" for n in lengths)
            lines.append(f"| {run['run_name']} | {run['seed']} | {cells} |")
    return "\n".join(lines)


def print_tables(records):
    print(f"{markdown_table(records)}\n\n{dynamics_table(records)}\n\n{extrapolation_table(records)}")


def main(argv=None):
    args = parse_args(argv)
    path = os.path.join(args.out, "results.json")
    if args.table:
        if not os.path.isfile(path):
            sys.exit(f"error: {path} not found; run rnn_tutorial/reproduce.py first")
        with open(path) as f:
            print_tables(json.load(f)["runs"])
        return
    tasks = [(name, seed, args.total_steps, args.swanlab_mode, args.swanlab_dir)
             for name in args.runs for seed in range(1, args.seeds + 1)]
    tasks.sort(key=lambda t: -relative_cost(t[0]))
    print(f"{len(tasks)} runs ({len(args.runs)} experiments x {args.seeds} seeds) on {args.jobs} processes")

    start, records = time.perf_counter(), []
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.jobs, initializer=quiet_worker) as pool:
        for i, record in enumerate(pool.imap_unordered(run_one, tasks), 1):
            records.append(record)
            elapsed = time.perf_counter() - start
            print(f"[{i}/{len(tasks)}] {elapsed:6.0f} s  {record['run_name']:<20} seed {record['seed']}: "
                  f"{100 * record['test_accuracy']:5.1f}% (lengths 11-20: "
                  f"{100 * record['accuracy_longer']['11-20']:.1f}%)", flush=True)
    total = time.perf_counter() - start

    records.sort(key=lambda r: (list(EXPERIMENTS).index(r["run_name"]), r["seed"]))
    os.makedirs(args.out, exist_ok=True)
    meta = {
        "command": "python rnn_tutorial/reproduce.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "total_wall_time_s": round(total, 1),
        "jobs": args.jobs,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "torch": train_cls_rnn.torch.__version__,
        "test_samples": TEST_SAMPLES,
        "per_length_samples": PER_LENGTH_SAMPLES,
        "converged_threshold": CONVERGED,
    }
    with open(path, "w") as f:
        json.dump({"meta": meta, "runs": records}, f, indent=1)
        f.write("\n")
    print()
    print_tables(records)
    print(f"\nwrote {path} in {total:.0f} s")
    if not args.no_figures:
        from figures import draw_all  # rnn_tutorial/figures.py

        for figure in draw_all(path, args.out):
            print(f"wrote {figure}")


if __name__ == "__main__":
    main()
