"""What does a model stuck at 50% (or 20%) know? Score its answers modulo 2 and modulo 5.

The sum mod 10 is the pair (sum mod 2, sum mod 5) (Chinese remainder theorem),
and a network can learn one half without the other. A model that knows the
residue mod 5 but guesses the parity is right half the time, with loss ln 2;
one that knows only the parity is right a fifth of the time, with loss ln 5.
This trains the given experiment and seeds (the same runs as reproduce.py,
through the same sweep engine) and scores each on the same 10,000 test
sequences; records go to rnn_tutorial/records/residues/.

    python rnn_tutorial/residues.py --run deeper_rnn --seeds 1 3
"""

import argparse
import os
import sys

if __package__ in (None, ""):  # run as a file: import the package from the repository root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import train_cls_rnn  # noqa: E402
from rnn_tutorial import scoring, sweep  # noqa: E402
from rnn_tutorial.experiments import EXPERIMENTS  # noqa: E402


def score_residues(name, seed, flags):
    """Sweep runner: train one run, score it modulo the modulus and each of its proper divisors."""
    result = scoring.train_run(name, seed, flags)
    config = result["config"]
    modulus = config["max_number"] + 1
    test_set = scoring.test_set(config["min_seq_len"], config["max_seq_len"], scoring.TEST_SAMPLES,
                                config["max_number"])
    scores = train_cls_rnn.evaluate(result["model"], test_set, torch.device("cpu"),
                                    divisors=train_cls_rnn.proper_divisors(modulus))
    residues = {str(modulus): scores["accuracy"]}
    residues.update({str(d): scores[f"accuracy_mod{d}"] for d in train_cls_rnn.proper_divisors(modulus)})
    return {"run_name": name, "seed": seed, "flags": config, "residues": residues}


def describe_run(task, record):
    shown = ", ".join(f"mod {d}: {100 * a:.1f}%" for d, a in record["residues"].items())
    return f"{task.name} seed {task.seed}: {shown}"


def main():
    p = argparse.ArgumentParser(description="Score trained models modulo the divisors of the modulus.")
    p.add_argument("--run", choices=list(EXPERIMENTS), default="deeper_rnn")
    sweep.add_sweep_arguments(p, seeds_default="1 3")
    args = sweep.check_sweep_arguments(p, p.parse_args())
    flags = tuple(EXPERIMENTS[args.run])
    tasks = [sweep.Task("rnn_tutorial.residues:score_residues", args.run, seed, flags) for seed in args.seeds]
    result = sweep.run_sweep(tasks, sweep.RecordStore(args.records), describe_run, jobs=args.jobs,
                             scheduler=args.scheduler, fresh=args.fresh, recheck=args.recheck)
    done = [t for t in tasks if t in result.records]
    if done:
        modulus, *divisors = result.records[done[0]]["residues"]
        columns = [modulus] + sorted(divisors, key=int, reverse=True)
        print(f"\n| {args.run}, seed | right (mod {modulus}) | "
              + " | ".join(f"right mod {d}" for d in columns[1:]) + " |")
        print("|---" * (len(columns) + 1) + "|")
        for task in done:
            scores = result.records[task]["residues"]
            print(f"| {task.seed} | " + " | ".join(f"{100 * scores[d]:.1f}%" for d in columns) + " |")
    sweep.exit_if_failed(result)


if __name__ == "__main__":
    main()
