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
"""

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ARTICLE = os.path.join(ROOT, "..", "shared", "seeds", "article_zh.md")
CONFIGS = {
    "default": [],
    "sota_warmup": ["--hidden_dim", "32", "--num_layers", "3", "--batch_size", "64",
                    "--lr", "0.005", "--warmup_step", "2000"],
}


# ---------------------------------------------------------------- workers


def install_stopwatch_swanlab():
    """A stand-in swanlab module that only remembers when each step was logged."""
    stamps = []
    fake = types.ModuleType("swanlab")
    fake.init = lambda *a, **k: None
    fake.finish = lambda *a, **k: None
    fake.has_run = lambda: True

    def log(metrics, step=None):
        if step is not None and not stamps or step is not None and step > stamps[-1][0]:
            stamps.append((step, time.perf_counter()))

    fake.log = log
    sys.modules["swanlab"] = fake
    return stamps


def ms_per_step(stamps):
    (first_step, first_time), (last_step, last_time) = stamps[0], stamps[-1]
    return (last_time - first_time) / (last_step - first_step) * 1e3


def run_ours(flags, steps):
    sys.path.insert(0, ROOT)
    stamps = install_stopwatch_swanlab()
    import train_cls_rnn

    with tempfile.TemporaryDirectory() as tmp:
        args = train_cls_rnn.parse_args(flags + ["--total_steps", str(steps), "--save_dir", tmp])
        train_cls_rnn.train(args, progress="none")
    return {"ms_per_step": ms_per_step(stamps)}


def run_bare(flags, steps):
    sys.path.insert(0, ROOT)
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


def article_training_code(article_path):
    """The appendix train_cls_rnn.py, as printed in the article (not stored in this repo)."""
    with open(article_path, encoding="utf-8") as f:
        text = f.read()
    appendix = text[text.index("### 附录：训练代码"):]
    return re.search(r"```python\n(.*?)```", appendix, re.S).group(1)


def exec_article_script(argv, article_path):
    """Run the article's appendix script with these arguments, in this process.

    One torch thread, SwanLab replaced by the stopwatch, its prints silenced.
    Returns the stopwatch stamps of its logging calls.
    """
    import torch

    torch.set_num_threads(1)
    stamps = install_stopwatch_swanlab()
    code = compile(article_training_code(article_path), "article_train_cls_rnn.py", "exec")
    sys.argv = ["train_cls_rnn.py", *argv]
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        exec(code, {"__name__": "__main__"})
    return stamps


def run_article(flags, steps, article_path):
    with tempfile.TemporaryDirectory() as tmp:
        stamps = exec_article_script([*flags, "--total_steps", str(steps), "--save_dir", tmp], article_path)
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


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    p.add_argument("--steps", type=int, default=4000, help="training steps per measurement (> 2000)")
    p.add_argument("--repeats", type=int, default=5, help="measurements of each kind; the median is kept")
    p.add_argument("--article", default=DEFAULT_ARTICLE, help="article_zh.md holding the appendix script")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--worker", choices=["ours", "bare", "article"], help=argparse.SUPPRESS)
    p.add_argument("--config", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    args = p.parse_args()
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
