"""Benchmark: milliseconds per training step, ours against the article's script.

For each configuration (the article's default and its sota_warmup recipe) it
measures, each in a fresh process with one torch thread:

  full loop  python train_cls_rnn.py as shipped: data, packing, schedule, logging,
             periodic evaluation and checkpoints (SwanLab replaced by a no-op)
  bare step  forward + backward + optimizer step of the same model on batches
             built beforehand: the floor the full loop can approach
  article    the appendix training script of the article, read from
             ../shared/seeds/article_zh.md at run time and run unchanged
             (SwanLab replaced by the same no-op, device cpu)

The loops are timed between their first and last logging call, so start-up is
left out of the per-step figures; start-up is reported separately.

    python rnn_tutorial/benchmark.py                      # both configurations
    python rnn_tutorial/benchmark.py --steps 2000 --repeats 1
    python rnn_tutorial/benchmark.py --recipe             # reliable against the same network without the recipe
    python rnn_tutorial/benchmark.py --audit RECORD       # audit, certificate and checker of one recorded model

--recipe trains the recipe `reliable` and `reliable_rnn_b128` (the same network, batch and schedule, none of
the recipe's additions) on one seed, whole runs, side by side, one process and one thread each, and prints
their wall times and the ratio: what the recipe's extras (noise, penalty, hard sequences, frequent
evaluation) cost over the article's packed step.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a file: import the package from the repository root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from rnn_tutorial import article  # noqa: E402  (the article's own scripts, and the stand-in SwanLab)
from rnn_tutorial.experiments import EXPERIMENTS  # noqa: E402

ROOT = article.ROOT
DEFAULT_ARTICLE = article.DEFAULT_ARTICLE
CONFIGS = {"default": EXPERIMENTS["baseline"], "sota_warmup": EXPERIMENTS["sota_warmup"]}


# ---------------------------------------------------------------- workers


def ms_per_step(stamps):
    (first_step, first_time), (last_step, last_time) = stamps[0], stamps[-1]
    return (last_time - first_time) / (last_step - first_step) * 1e3


def run_ours(flags, steps):
    stamps = article.install_stopwatch_swanlab()
    import train_cls_rnn

    with tempfile.TemporaryDirectory() as tmp:
        args = train_cls_rnn.parse_args(flags + ["--total_steps", str(steps), "--save_dir", tmp])
        train_cls_rnn.train(args, progress="none")
    return {"ms_per_step": ms_per_step(stamps)}


def run_bare(flags, steps):
    import torch
    import train_cls_rnn as T

    args = T.parse_args(flags)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    model = T.build_model(vars(args))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, fused=True)
    criterion = torch.nn.CrossEntropyLoss()
    batches = list(zip(*T.random_batches(steps, args.batch_size, args.min_seq_len, args.max_seq_len,
                                         args.max_number, torch.Generator().manual_seed(0))))
    start = None
    for i, (inputs, lengths, targets) in enumerate(batches):
        if i == steps // 10:  # leave out the first steps (allocator warm-up), like the loops above
            start = time.perf_counter()
        loss = criterion(model(inputs, lengths, lengths_sorted=True), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return {"ms_per_step": (time.perf_counter() - start) / (steps - steps // 10) * 1e3}


def run_article(flags, steps, article_path):
    with tempfile.TemporaryDirectory() as tmp:
        stamps = article.exec_training([*flags, "--total_steps", str(steps), "--save_dir", tmp],
                                       article.training_code(article_path))
    return {"ms_per_step": ms_per_step(stamps)}


def run_worker(kind, config, steps, article_path):
    flags = CONFIGS[config]
    if kind == "ours":
        return run_ours(flags, steps)
    if kind == "bare":
        return run_bare(flags, steps)
    return run_article(flags, steps, article_path)


# ---------------------------------------------------------------- driver


def measure(kind, config, steps, article_path):
    """Run one worker in a fresh process; also time its whole run (start-up included)."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--config", config,
               "--steps", str(steps), "--article", article_path]
    env = dict(os.environ, OMP_NUM_THREADS="1", SWANLAB_MODE="disabled")
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{kind}/{config} failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def measure_sweep(jobs, runs, steps):
    """Runs per hour of a sweep of baseline runs (seeds 1..runs) on a local cluster of jobs workers.

    The workers' time (jobs x wall time) splits into: inside the runs;
    importing torch and the project once in each fresh worker process; the
    engine's own overhead (starting the cluster until a worker's first run,
    the gaps between one run and the next on a worker, closing the cluster);
    and waiting for the last run when runs of unequal length end apart.
    """
    from rnn_tutorial import scoring, sweep

    tasks = scoring.make_tasks(["baseline"], list(range(1, runs + 1)), total_steps=steps if steps != 20000 else None)
    with tempfile.TemporaryDirectory() as records:
        started_at = time.time()
        result = sweep.run_sweep(tasks, sweep.RecordStore(records), scoring.describe_run, jobs=jobs, progress="lines")
        ended_at = time.time()
    by_worker = {}
    for env in (record["env"] for record in result.records.values()):
        by_worker.setdefault(env["worker_pid"], []).append(env)
    last_end = lambda envs: max(e["started_at"] + e["import_s"] + e["task_s"] for e in envs)  # noqa: E731
    finished = max(last_end(envs) for envs in by_worker.values())
    engine, waiting = jobs * (ended_at - finished), 0.0  # closing, for every worker
    for envs in by_worker.values():
        envs.sort(key=lambda e: e["started_at"])
        engine += envs[0]["started_at"] - started_at  # start-up
        engine += sum(b["started_at"] - (a["started_at"] + a["import_s"] + a["task_s"]) for a, b in zip(envs, envs[1:]))
        waiting += finished - last_end(envs)
    wall, worker_time = ended_at - started_at, jobs * (ended_at - started_at)
    imports = sum(e["import_s"] for envs in by_worker.values() for e in envs)
    return {"jobs": jobs, "runs": runs, "steps": steps, "wall_s": wall, "runs_per_hour": runs / wall * 3600,
            "overhead": engine / worker_time, "import_share": imports / worker_time,
            "waiting_share": waiting / worker_time}


def audit_benchmark(args):
    """The audit of one recorded model (its default tries), its certificate and the checker, timed apart, one thread."""
    import torch

    from rnn_tutorial import check_proof, sweep
    from rnn_tutorial.audit import certificate, judge, records

    torch.set_num_threads(1)
    path = args.audit
    record = json.load(open(path))
    model = records.recorded_model(record, path[:-5] + ".pt")
    start = time.perf_counter()
    result = judge.audit(model, record["flags"], certificate=True)
    audited = time.perf_counter()
    cert = certificate.certificate(model, record["flags"]["max_number"] + 1, result["proof"])
    written = time.perf_counter()
    valid, message = check_proof.check(cert, model.state_dict()) if cert else (False, "no certificate")
    checked = time.perf_counter()
    print(f"{os.path.relpath(path, sweep.DEFAULT_RECORDS)}: {result['verdict']}")
    print(f"  audit (default tries) {audited - start:6.1f} s\n  certificate (settled)  {written - audited:6.1f} s"
          f"\n  checker               {checked - written:6.1f} s: {message if valid else 'invalid: ' + message}"
          f"\n  in all                {checked - start:6.1f} s on one thread")


RECIPE_PAIR = ("reliable", "reliable_rnn_b128")


def recipe_benchmark(args):
    """Both runs of RECIPE_PAIR at once, in fresh processes; their training loops' wall times and the ratio."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        running = {}
        for name in RECIPE_PAIR:
            flags = EXPERIMENTS[name] + ["--seed", str(args.recipe_seed), "--threads", "1", "--swanlab_mode", "disabled",
                                         "--save_dir", os.path.join(tmp, name)]
            running[name] = (time.perf_counter(), subprocess.Popen([sys.executable, "train_cls_rnn.py", *flags], cwd=ROOT,
                                                                     env=env, stdout=subprocess.DEVNULL,
                                                                     stderr=subprocess.PIPE, text=True))
        results = {}
        for name, (started, process) in running.items():
            _, err = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"{name} failed:\n{err[-2000:]}")
            with open(os.path.join(tmp, name, "result.json")) as f:
                results[name] = dict(json.load(f), process_s=time.perf_counter() - started)
    recipe, plain = (results[name] for name in RECIPE_PAIR)
    print(f"seed {args.recipe_seed}, side by side, one thread each")
    for name, r in results.items():
        print(f"  {name:18s} {r['wall_time_s']:7.1f} s training loop ({r['steps']} steps), accuracy {r['accuracy']:.4f}")
    print(f"  {RECIPE_PAIR[0]} / {RECIPE_PAIR[1]}: {recipe['wall_time_s'] / plain['wall_time_s']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def sweep_benchmark(args):
    results = [measure_sweep(jobs, args.sweep_runs, args.sweep_steps) for jobs in args.sweep_jobs]
    print(f"\nsweep of {args.sweep_runs} baseline runs of {args.sweep_steps} steps on a local Dask cluster")
    for r in results:
        print(f"  {r['jobs']} workers: {r['wall_s']:6.1f} s, {r['runs_per_hour']:6.0f} runs/hour; of the workers' time: "
              f"engine start-up, per-run gaps and closing {100 * r['overhead']:.1f}%, importing torch in each worker "
              f"{100 * r['import_share']:.1f}%, waiting for the last run {100 * r['waiting_share']:.1f}%")
    for r in results[1:]:
        print(f"  {r['jobs']} workers / {results[0]['jobs']}: {r['runs_per_hour'] / results[0]['runs_per_hour']:.2f}x "
              "the throughput")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    p.add_argument("--steps", type=int, default=4000, help="training steps per measurement (> 2000)")
    p.add_argument("--repeats", type=int, default=5, help="measurements of each kind; the median is kept")
    p.add_argument("--article", default=DEFAULT_ARTICLE, help="article_zh.md holding the appendix script")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--sweep", action="store_true",
                   help="instead: sweep throughput (runs/hour) and engine overhead with --sweep_jobs workers")
    p.add_argument("--sweep_runs", type=int, default=8, help="runs per sweep measurement (baseline, seeds 1..N)")
    p.add_argument("--sweep_steps", type=int, default=20000, help="training steps of each run of a sweep measurement")
    p.add_argument("--sweep_jobs", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    p.add_argument("--recipe", action="store_true",
                   help="instead: the recipe `reliable` against reliable_rnn_b128, whole runs side by side")
    p.add_argument("--recipe_seed", type=int, default=3, help="the seed of both --recipe runs")
    p.add_argument("--audit", metavar="RECORD", help="instead: time the audit, certificate and checker of the model "
                   "of a study record (records/audit/.../seed<N>.json, its weights beside it)")
    p.add_argument("--worker", choices=["ours", "bare", "article"], help=argparse.SUPPRESS)
    p.add_argument("--config", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.recipe:
        return recipe_benchmark(args)
    if args.audit:
        return audit_benchmark(args)
    if args.sweep:
        if args.sweep_runs < 1 or args.sweep_steps < 101 or min(args.sweep_jobs) < 1:
            p.error("--sweep_runs and --sweep_jobs must be at least 1, --sweep_steps above 100")
        return sweep_benchmark(args)
    if args.steps <= 2000:
        p.error("--steps must exceed 2000 (the sota_warmup warmup)")
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.config, args.steps, args.article)))
        return

    kinds = ["ours", "bare"] + (["article"] if os.path.isfile(args.article) else [])
    if "article" not in kinds:
        print(f"note: {args.article} not found; the article's script is not measured")
    import platform

    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, torch {torch.__version__}, 1 torch thread")
    results = {}
    for config in args.configs:
        # interleaved (ours, bare, article, ours, ...) so that drift in machine speed hits all alike
        runs = {kind: [] for kind in kinds}
        for _ in range(args.repeats):
            for kind in kinds:
                runs[kind].append(measure(kind, config, args.steps, args.article))
        for kind in kinds:
            results[(config, kind)] = sorted(runs[kind], key=lambda r: r["ms_per_step"])[args.repeats // 2]
        ours, bare = results[(config, "ours")], results[(config, "bare")]
        print(f"\n{config} ({args.steps} steps, median of {args.repeats})")
        for kind in kinds:
            r = results[(config, kind)]
            print(f"  {kind:8s} {r['ms_per_step']:7.3f} ms/step  {1e3 / r['ms_per_step']:7.0f} steps/s"
                  + (f"  (whole process {r['process_s']:.1f} s)" if kind != "bare" else ""))
        print(f"  full loop / bare step: {ours['ms_per_step'] / bare['ms_per_step']:.3f}")
        if "article" in kinds:
            print(f"  speed-up over the article: {results[(config, 'article')]['ms_per_step'] / ours['ms_per_step']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{c}/{k}": v for (c, k), v in results.items()}, f, indent=2)


if __name__ == "__main__":
    main()
