"""Cross-check: run the article's own training script, unchanged, and score it like ours.

If our reproduction disagrees with the article, is it our code or the claim?
This runs the appendix train_cls_rnn.py exactly as printed in the article
(read from ../shared/seeds/article_zh.md at run time and sent to the workers
as text; nothing of it is stored here) with an experiment's flags, SwanLab
replaced by a no-op. Python's and torch's global seeds are set before each
run, so the runs are repeatable; the article itself set none. Each final
checkpoint is loaded into our RnnClsNet (same parameter names) and scored on
the same test sets as reproduce.py. Runs go through the sweep engine and are
recorded under rnn_tutorial/records/article_check/.

    python rnn_tutorial/article_check.py --runs deeper_rnn sota_warmup --seeds 3
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile

if __package__ in (None, ""):  # run as a file: import the package from the repository root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import train_cls_rnn  # noqa: E402
from rnn_tutorial import article, scoring, sweep  # noqa: E402
from rnn_tutorial.experiments import EXPERIMENTS, claim_words  # noqa: E402
from rnn_tutorial.runs import list_checkpoints  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def run_article_script(name, seed, flags, code):
    """Sweep runner: the article's script (its text) with these flags and global seed, scored on our test sets."""
    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as save_dir:
        article.exec_training([*flags, "--save_dir", save_dir, "--save_every", "0"], code)
        (step, checkpoint), = list_checkpoints(save_dir)
        state_dict = torch.load(checkpoint, weights_only=True)
    config = vars(train_cls_rnn.parse_args([*flags, "--seed", str(seed)]))
    model = train_cls_rnn.build_model(config)
    model.load_state_dict(state_dict)
    return {"run_name": name, "seed": seed, "steps": step, "flags": config, **scoring.score(model.eval(), config)}


def describe_run(task, record):
    return f"{task.name:<12} seed {task.seed:<4} {100 * record['test_accuracy']:5.1f}% (the article's script)"


def tasks_of(names, seeds, code=""):
    """The sweep Tasks of the article's script run with these experiments' flags (code: the script's text; the
    records are found without it)."""
    return [sweep.Task("rnn_tutorial.article_check:run_article_script", name, seed, tuple(EXPERIMENTS[name]),
                       (("code", code),), scoring.relative_cost(EXPERIMENTS[name])) for name in names for seed in seeds]


def table(records, names):
    """The article's own script, per experiment: mean and per-seed accuracy, converged seeds, lengths 11-20."""
    lines = ["| run (the article's own script) | accuracy, mean | each seed | converged (≥99%) | lengths 11-20 |",
             "|---|---|---|---|---|"]
    for name in names:
        runs = [r for r in records if r["run_name"] == name]
        if not runs:
            continue
        accs = [r["test_accuracy"] for r in runs]
        lines.append(f"| {name} | {100 * statistics.fmean(accs):.1f}% | {' '.join(f'{100 * a:.1f}' for a in accs)} | "
                     f"{sum(r['converged'] for r in runs)} of {len(runs)} | "
                     f"{100 * statistics.fmean(r['accuracy_longer']['11-20'] for r in runs):.1f}% |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description="Run the article's own script and score it on our test sets.")
    p.add_argument("--runs", nargs="+", choices=[n for n in EXPERIMENTS if claim_words(n)],
                   default=["baseline", "deeper_rnn", "sota_warmup"], metavar="NAME")
    p.add_argument("--article", default=article.DEFAULT_ARTICLE, help="article_zh.md with the appendix script")
    p.add_argument("--out", default=os.path.join(HERE, "article_check.json"))
    sweep.add_sweep_arguments(p, seeds_default="3")
    args = sweep.check_sweep_arguments(p, p.parse_args())
    if not os.path.isfile(args.article):
        p.error(f"{args.article} not found")
    code = article.training_code(args.article)
    tasks = tasks_of(args.runs, args.seeds, code)
    result = sweep.run_sweep(tasks, sweep.RecordStore(args.records), describe_run, jobs=args.jobs,
                             scheduler=args.scheduler, fresh=args.fresh, recheck=args.recheck)
    records = [{k: v for k, v in r.items() if k != "flags"} for r in scoring.collect(tasks, result.records)]
    with open(args.out, "w") as f:
        json.dump({"command": "python rnn_tutorial/article_check.py " + " ".join(sys.argv[1:]), "runs": records},
                  f, indent=1)
        f.write("\n")
    print(table(records, args.runs))
    print(f"wrote {args.out}")
    sweep.exit_if_failed(result)


if __name__ == "__main__":
    main()
