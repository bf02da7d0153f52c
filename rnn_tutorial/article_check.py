"""Cross-check: run the article's own training script, unchanged, and score it like ours.

If our reproduction disagrees with the article, is it our code or the claim?
This runs the appendix train_cls_rnn.py exactly as printed in the article
(read from ../shared/seeds/article_zh.md at run time; nothing of it is stored
here) with an experiment's flags, SwanLab replaced by a no-op. Python's and
torch's global seeds are set before each run, so the runs are repeatable; the
article itself set none. Each final checkpoint is loaded into our RnnClsNet
(same parameter names) and scored on the same test sets as reproduce.py.

    python rnn_tutorial/article_check.py --runs deeper_rnn sota_warmup --seeds 3
"""

import argparse
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import benchmark  # noqa: E402  (reads the article's script; no-op SwanLab)
import reproduce  # noqa: E402  (experiments and test sets)
import train_cls_rnn  # noqa: E402


def run_article_script(task):
    name, seed, article_path = task
    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    flags = reproduce.EXPERIMENTS[name][0]
    with tempfile.TemporaryDirectory() as save_dir:
        benchmark.exec_article_script([*flags, "--save_dir", save_dir, "--save_every", "0"], article_path)
        (step, checkpoint), = train_cls_rnn.list_checkpoints(save_dir)
        state_dict = torch.load(checkpoint, weights_only=True)
    config = vars(train_cls_rnn.parse_args(flags))
    model = train_cls_rnn.build_model(config)
    model.load_state_dict(state_dict)
    return {"run_name": name, "seed": seed, "steps": step, **reproduce.score(model.eval(), config)}


def main():
    p = argparse.ArgumentParser(description="Run the article's own script and score it on our test sets.")
    p.add_argument("--runs", nargs="+", choices=[n for n, (_, claim) in reproduce.EXPERIMENTS.items() if claim],
                   default=["baseline", "deeper_rnn", "sota_warmup"], metavar="NAME")
    p.add_argument("--seeds", type=int, default=3, help="runs per experiment (global seeds 1..K)")
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    p.add_argument("--article", default=benchmark.DEFAULT_ARTICLE, help="article_zh.md with the appendix script")
    p.add_argument("--out", default=os.path.join(HERE, "article_check.json"))
    args = p.parse_args()
    if not os.path.isfile(args.article):
        p.error(f"{args.article} not found")
    tasks = [(name, seed, args.article) for name in args.runs for seed in range(1, args.seeds + 1)]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        records = pool.map(run_article_script, tasks)
    with open(args.out, "w") as f:
        json.dump({"command": "python rnn_tutorial/article_check.py " + " ".join(sys.argv[1:]), "runs": records},
                  f, indent=1)
        f.write("\n")
    print("| run (the article's own script) | accuracy, mean | each seed | converged (≥99%) | lengths 11-20 |")
    print("|---|---|---|---|---|")
    for name in args.runs:
        runs = [r for r in records if r["run_name"] == name]
        accs = [r["test_accuracy"] for r in runs]
        print(f"| {name} | {100 * statistics.fmean(accs):.1f}% | {' '.join(f'{100 * a:.1f}' for a in accs)} | "
              f"{sum(r['converged'] for r in runs)} of {len(runs)} | "
              f"{100 * statistics.fmean(r['accuracy_longer']['11-20'] for r in runs):.1f}% |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
