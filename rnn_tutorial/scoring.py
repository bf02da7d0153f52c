"""Train one run and score it: the runner every multi-run script hands to the sweep engine.

A run is train() from train_cls_rnn.py with an experiment's flags and a seed
(checkpoints in a temporary folder), then its final model is scored on fixed
test sets: 10,000 sequences at the trained lengths, and 1,000 at each length
from 1 to 50 (to see how far it extrapolates). The test sets are drawn from
their own seeds, apart from training and from the periodic evaluation, so that
every run of every script is judged on the same sequences. make_tasks() turns
experiments and seeds into sweep Tasks whose records go to records/reproduce/.
"""

import statistics
import tempfile

import train_cls_rnn
from rnn_tutorial import limits, sweep
from rnn_tutorial.experiments import EXPERIMENTS

TEST_SAMPLES = 10_000  # at the trained lengths
PER_LENGTH_SAMPLES = 1_000  # at each length 1..MAX_TEST_LENGTH
MAX_TEST_LENGTH = 50
LENGTH_BUCKETS = [(6, 10), (11, 20), (21, 50)]
CONVERGED = 0.99
TEST_SEED = 3_000_017  # test sets: fixed, and apart from training and periodic evaluation
RECORDS = "reproduce"  # the record folder of run_one's runs (it was reproduce.py's runner first)

_test_sets = {}


def test_set(min_len, max_len, num_samples, max_number):
    key = (min_len, max_len, num_samples, max_number)
    if key not in _test_sets:  # built once per worker process
        _test_sets[key] = train_cls_rnn.make_eval_set(
            num_samples, min_len, max_len, max_number, seed=TEST_SEED + 1000 * min_len + max_len
        )
    return _test_sets[key]


def score(model, config):
    """Final accuracy at the trained lengths, at each length 1..50, and per longer bucket."""
    device = limits.resolve_device(config.get("device", "cpu"))
    lo, hi, n = config["min_seq_len"], config["max_seq_len"], config["max_number"]
    test_accuracy = train_cls_rnn.evaluate(model, test_set(lo, hi, TEST_SAMPLES, n), device)["accuracy"]
    by_length = {
        length: train_cls_rnn.evaluate(model, test_set(length, length, PER_LENGTH_SAMPLES, n), device)["accuracy"]
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


def train_run(name, seed, flags, swanlab_mode="disabled", swanlab_dir="./swanlog"):
    """train() one run (the experiment's flags plus a seed); checkpoints go to a temporary folder."""
    with tempfile.TemporaryDirectory() as save_dir:
        argv = list(flags) + [
            "--seed", str(seed), "--run_name", f"{name}-seed{seed}", "--save_dir", save_dir,
            "--save_every", "0", "--swanlab_mode", swanlab_mode, "--swanlab_dir", swanlab_dir,
            "--swanlab_project", "tutorial_with_rnn_reproduce",
        ]
        result = train_cls_rnn.train(train_cls_rnn.parse_args(argv), progress="none")
    if result["interrupted"]:  # never record half a run as a finished one
        raise RuntimeError(f"{name} seed {seed} was interrupted at step {result['steps']}")
    return result


def run_one(name, seed, flags, swanlab_mode="disabled", swanlab_dir="./swanlog"):
    """Sweep runner: train one run and score it; returns its record."""
    return run_record(name, seed, train_run(name, seed, flags, swanlab_mode, swanlab_dir))


def run_record(name, seed, result):
    """The record of a trained run: its flags, curves and scores."""
    model, config = result["model"], result["config"]
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
        **({"restarted_at": result["restarted_at"]} if result.get("restarted_at") else {}),  # --restart_by
        **score(model, config),
    }


# ----------------------------------------------------------------------------
# Tasks for the sweep engine
# ----------------------------------------------------------------------------


def experiment_flags(name, total_steps=None, experiments=None):
    flags = (experiments or EXPERIMENTS)[name]
    return tuple(flags) + (("--total_steps", str(total_steps)) if total_steps else ())


def relative_cost(flags):
    """Rough cost of a run, to start the longest ones first."""
    config = train_cls_rnn.build_parser().parse_args(list(flags))
    return (config.total_steps * limits.GATES[config.rnn_type] * config.num_layers * (1 + config.batch_size / 32)
            * (config.min_seq_len + config.max_seq_len) * (1 + config.hidden_dim / 64))


def make_tasks(names, seeds, total_steps=None, swanlab_mode="disabled", swanlab_dir="./swanlog", experiments=None):
    """One sweep Task per (experiment, seed), run by run_one(). experiments: name -> flags (default EXPERIMENTS)."""
    options = (("swanlab_mode", swanlab_mode), ("swanlab_dir", swanlab_dir))
    tasks = []
    for name in names:
        flags = experiment_flags(name, total_steps, experiments)
        tasks += [sweep.Task("rnn_tutorial.scoring:run_one", name, seed, flags, options, relative_cost(flags),
                             folder=RECORDS) for seed in seeds]
    return tasks


def describe_run(task, record):
    """The line shown when a run finishes."""
    return (f"{task.name:<20} seed {task.seed:<4} {100 * record['test_accuracy']:5.1f}% "
            f"(lengths 21-50: {100 * record['accuracy_longer']['21-50']:.1f}%) in {record['wall_time_s']:.0f} s")


def collect(tasks, records):
    """The records of the tasks that have one, each under its task's name, in task order."""
    return [{**records[t], "run_name": t.name} for t in tasks if t in records]


# ----------------------------------------------------------------------------
# Reading records
# ----------------------------------------------------------------------------


def accuracy_at_article_lengths(record):
    """Accuracy at the article's lengths 2-5: the 10,000-sequence test set for runs trained on 2-5,
    else the mean of the 1,000-sequence sets of lengths 2, 3, 4 and 5 (4,000 sequences)."""
    flags = record["flags"]
    if (flags["min_seq_len"], flags["max_seq_len"]) == (2, 5):
        return record["test_accuracy"]
    return statistics.fmean(record["accuracy_by_length"][str(n)] for n in range(2, 6))


def first_step_reaching(record, accuracy):
    """The first evaluation step at which a run's accuracy reached the given level, or None."""
    return next((p["step"] for p in record["eval_curve"] if p["accuracy"] >= accuracy), None)
