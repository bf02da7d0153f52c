"""Re-run the article's experiments over several seeds and record what reproduces.

Every run calls train() from train_cls_rnn.py with the article's exact flags
(experiments.py), then scores the final model on fixed test sets: 10,000
sequences at the trained lengths, and 1,000 sequences at each length from 1 to
50 (scoring.py). The runs go through the sweep engine (sweep.py, on Dask): each
finished run is recorded at once under rnn_tutorial/records/reproduce/, and the
same command again only runs what is missing. OUT/results.json and the tables
are then built from the records, and the figures from results.json.

    python rnn_tutorial/reproduce.py                         # everything (about 20 min on 2 cores)
    python rnn_tutorial/reproduce.py --runs baseline sota --seeds 11-20
    python rnn_tutorial/reproduce.py --total_steps 2000      # a quick look
    python rnn_tutorial/reproduce.py --scheduler tcp://HOST:8786   # on a Dask cluster
    swanlab watch ./swanlog                                  # all runs side by side

The same flags and seed give the same numbers again (wall times aside).
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

if __package__ in (None, ""):  # run as a file: import the package from the repository root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import train_cls_rnn  # noqa: E402
from rnn_tutorial import sweep  # noqa: E402  (the one sweep engine)
from rnn_tutorial.experiments import EXPERIMENTS, claim_words  # noqa: E402
from rnn_tutorial.scoring import (CONVERGED, PER_LENGTH_SAMPLES, TEST_SAMPLES,  # noqa: E402
                                  accuracy_at_article_lengths, collect, describe_run, first_step_reaching, make_tasks)

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------
# Summary table (markdown), from results.json records
# ----------------------------------------------------------------------------


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
            "claim": claim_words(name) or "(not in the article)",
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


def target_table(records):
    """Section 6's target, per experiment: seeds >= 99% at lengths 2-5 and at lengths 21-50, and how soon."""
    lines = ["| run | ≥ 99% at lengths 2-5 | ≥ 99% at lengths 21-50 | lengths 21-50, mean (worst seed) | "
             "first step at 99%, median over seeds | training time per run |", "|---|---|---|---|---|---|"]
    for name in EXPERIMENTS:
        runs = [r for r in records if r["run_name"] == name]
        if not runs:
            continue
        short = sum(accuracy_at_article_lengths(r) >= CONVERGED for r in runs)
        long = [r["accuracy_longer"]["21-50"] for r in runs]
        steps = statistics.median(first_step_reaching(r, CONVERGED) or math.inf for r in runs)
        lines.append(f"| {name} | {short} of {len(runs)} | {sum(a >= CONVERGED for a in long)} of {len(runs)} | "
                     f"{100 * statistics.fmean(long):.1f}% ({100 * min(long):.1f}%) | "
                     f"{'never' if math.isinf(steps) else f'{steps / 1000:g}k'} | "
                     f"{statistics.fmean(r['wall_time_s'] for r in runs):.0f} s |")
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Re-run the article's experiments over several seeds.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", nargs="+", choices=list(EXPERIMENTS), default=list(EXPERIMENTS),
                   metavar="NAME", help=f"experiments to run, from: {' '.join(EXPERIMENTS)}")
    p.add_argument("--total_steps", type=int, default=None,
                   help="override the article's 20000 steps (a quick look; not comparable to the article)")
    p.add_argument("--out", default=HERE, help="folder for results.json and the figures")
    p.add_argument("--swanlab_mode", choices=["local", "offline", "disabled"], default="local",
                   help="SwanLab logging of every run (project tutorial_with_rnn_reproduce)")
    p.add_argument("--swanlab_dir", default="./swanlog",
                   help="where SwanLab writes its logs, on the machine that runs each run")
    p.add_argument("--no_figures", action="store_true", help="write results.json only")
    p.add_argument("--table", action="store_true",
                   help="only print the summary tables of the runs already recorded (no training)")
    sweep.add_sweep_arguments(p)
    args = sweep.check_sweep_arguments(p, p.parse_args(argv))
    for name in args.runs if args.total_steps is not None else []:
        run_args = train_cls_rnn.parse_args(EXPERIMENTS[name])
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
    print(f"{markdown_table(records)}\n\n{target_table(records)}\n\n{dynamics_table(records)}\n\n"
          f"{extrapolation_table(records)}")


def write_results(path, runs, command):
    """results.json: every run's record, one run per line, and how they were made."""
    meta = {
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "torch": train_cls_rnn.torch.__version__,
        "test_samples": TEST_SAMPLES,
        "per_length_samples": PER_LENGTH_SAMPLES,
        "converged_threshold": CONVERGED,
        "sum_of_run_wall_times_s": round(sum(r["wall_time_s"] for r in runs), 1),
    }
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write('{"meta": ' + json.dumps(meta) + ',\n"runs": [\n')
        f.write(",\n".join(json.dumps(run, separators=(",", ":")) for run in runs))
        f.write("\n]}\n")


def main(argv=None):
    args = parse_args(argv)
    store = sweep.RecordStore(args.records)
    tasks = make_tasks(args.runs, args.seeds, args.total_steps, args.swanlab_mode, args.swanlab_dir)
    if args.table:
        records = {t: r for t in tasks if (r := store.load(t)) is not None}
        if not records:
            sys.exit(f"error: no recorded runs for these experiments and seeds in {args.records}; "
                     "run rnn_tutorial/reproduce.py first")
        print_tables(collect(tasks, records))
        return
    print(f"{len(tasks)} runs: {len(args.runs)} experiments x seeds {sweep.describe_seeds(args.seeds)}")
    start = time.perf_counter()
    result = sweep.run_sweep(tasks, store, describe_run, jobs=args.jobs, scheduler=args.scheduler,
                             fresh=args.fresh, recheck=args.recheck)
    if args.recheck:
        return sweep.exit_if_failed(result)
    runs = collect(tasks, result.records)
    path = os.path.join(args.out, "results.json")
    write_results(path, runs, "python rnn_tutorial/reproduce.py " + " ".join(sys.argv[1:] if argv is None else argv))
    print()
    print_tables(runs)
    print(f"\nwrote {path} ({len(runs)} runs; {result.new} of them trained now, in {time.perf_counter() - start:.0f} s)")
    if not args.no_figures and runs:
        from rnn_tutorial.figures import draw_all

        for figure in draw_all(path, args.out):
            print(f"wrote {figure}")
    sweep.exit_if_failed(result)


if __name__ == "__main__":
    main()
