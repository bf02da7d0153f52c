"""Ask a trained RNN for the sum of a digit sequence modulo 10.

    python predict_cls_rnn.py                      # interactive prompt, newest run under ./output
    python predict_cls_rnn.py --list               # the runs it can load
    python predict_cls_rnn.py --save_dir ./output/sota_warmup
    python predict_cls_rnn.py 3 7 1 9              # one answer, then exit
    printf '3 7 1 9\\n[8, 8, 8]\\n' | python predict_cls_rnn.py --json   # one result per line

Sequences are digits separated by spaces and/or commas, optionally in brackets:
`3 7 1 9`, `3,7,1,9` and `[3, 7, 1, 9]` are the same. The model, the data
conventions come from train_cls_rnn.py, finding a run folder from rnn_tutorial/runs.py.

Sections: 1. loading a trained model  2. reading a sequence  3. prediction
          4. sessions  5. command line
"""

import argparse
import json
import os
import re
import sys
import time

import torch

from rnn_tutorial import runs, verdicts
from rnn_tutorial.runs import CheckpointError
from train_cls_rnn import build_model

MAX_LINE_CHARS = 10_000  # longer lines are refused before any parsing
MAX_SEQ_LEN = 1_000  # numbers per sequence; far beyond any trained length
QUIT_WORDS = {"quit", "exit", "q"}


# ----------------------------------------------------------------------------
# 1. Loading a trained model
# ----------------------------------------------------------------------------


def load_trained_model(save_dir=runs.DEFAULT_OUTPUT, checkpoint=None):
    """(model in eval mode, config, checkpoint path) of a run folder, or of the checkpoint named.

    Which file: runs.find_checkpoint. Nothing beyond plain data and
    argparse.Namespace is ever unpickled (weights_only=True).
    """
    checkpoint, config = runs.find_checkpoint(save_dir, checkpoint)
    state_dict = runs.load_plain(checkpoint, "checkpoint")
    try:
        model = build_model(config)
        model.load_state_dict(state_dict)
    except Exception:
        raise CheckpointError(
            f"{checkpoint} does not fit the model described by the args.pt beside it "
            "(was the folder reused by a run with another configuration?)"
        ) from None
    return model.eval(), config, checkpoint


# ----------------------------------------------------------------------------
# 2. Reading a sequence
# ----------------------------------------------------------------------------


class InputError(ValueError):
    """A typed sequence that cannot be fed to the model; the message says why."""


def parse_sequence(text, max_number):
    """'3 7 1 9', '3,7,1,9' or '[3, 7, 1, 9]' -> [3, 7, 1, 9], or InputError."""
    if len(text) > MAX_LINE_CHARS:
        raise InputError(f"line too long ({len(text)} characters; at most {MAX_LINE_CHARS})")
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1].strip()
    if not body:
        raise InputError(f"empty input: type digits 0-{max_number} separated by spaces or commas, e.g. 3 7 1 9")
    items = re.split(r"\s*,\s*|\s+", body)
    if len(items) > MAX_SEQ_LEN:
        raise InputError(f"sequence too long ({len(items)} numbers; at most {MAX_SEQ_LEN})")
    sequence = []
    for item in items:
        if item == "":
            raise InputError("empty item between commas")
        shown = item if len(item) <= 20 else item[:20] + "..."
        if re.fullmatch(r"-[0-9]+", item):
            raise InputError(f"{shown} is negative: numbers must be in 0..{max_number}")
        if not re.fullmatch(r"[0-9]+", item):
            raise InputError(f"{shown!r} is not a whole number: numbers must be in 0..{max_number}")
        # compare lengths first: int() refuses strings of thousands of digits
        if len(item.lstrip("0")) > len(str(max_number)) or int(item) > max_number:
            raise InputError(
                f"{shown} is out of range: numbers must be in 0..{max_number} "
                f"(the model was trained with --max_number {max_number})"
            )
        sequence.append(int(item))
    return sequence


# ----------------------------------------------------------------------------
# 3. Prediction
# ----------------------------------------------------------------------------


@torch.inference_mode()
def predict(model, sequence):
    """(predicted class, its softmax probability) for one sequence."""
    logits = model(torch.tensor([sequence]), torch.tensor([len(sequence)]))[0]
    prediction = int(logits.argmax())
    return prediction, float(logits.softmax(dim=0)[prediction])


def answer(model, config, sequence):
    """Everything shown about one prediction, as a dict (the --json record)."""
    prediction, confidence = predict(model, sequence)
    truth = sum(sequence) % (config["max_number"] + 1)
    record = {
        "sequence": sequence,
        "prediction": prediction,
        "confidence": round(confidence, 4),
        "answer": truth,
        "correct": prediction == truth,
    }
    lo, hi = config["min_seq_len"], config["max_seq_len"]
    if not lo <= len(sequence) <= hi:
        record["note"] = (f"length {len(sequence)} is outside the trained {lo}-{hi}, within the audit's proof for every "
                          "length" if config.get("proven") else
                          f"length {len(sequence)} is outside the trained {lo}-{hi}: extrapolation")
    return record


def format_answer(record):
    verdict = "correct" if record["correct"] else "WRONG"
    text = (
        f"{record['sequence']} -> {record['prediction']} (confidence {100 * record['confidence']:.1f}%), "
        f"true answer {record['answer']}: {verdict}"
    )
    return text + (f"  [{record['note']}]" if "note" in record else "")


# ----------------------------------------------------------------------------
# 4. Sessions: interactive prompt, piped lines, one-shot
# ----------------------------------------------------------------------------


def handle_line(model, config, line, as_json):
    """(output line, ok) for one input line."""
    try:
        record = answer(model, config, parse_sequence(line, config["max_number"]))
    except InputError as error:
        return (json.dumps({"input": line, "error": str(error)}) if as_json else f"invalid input: {error}"), False
    return (json.dumps(record) if as_json else format_answer(record)), True


def interactive(model, config, as_json):
    try:
        import readline  # noqa: F401  (line editing and history where available)
    except ImportError:
        pass
    print(f"Type digits 0-{config['max_number']} separated by spaces or commas (e.g. 3 7 1 9 or [3, 7, 1, 9]); "
          "quit, exit or Ctrl-D to leave.")
    while True:
        try:
            line = input(">>> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if line.strip().lower() in QUIT_WORDS:
            return 0
        print(handle_line(model, config, line, as_json)[0])


def piped(model, config, as_json, stream):
    """One result line per input line; exit status 1 if any line was invalid."""
    all_ok = True
    for line in stream:
        line = line.rstrip("\r\n")
        if line.strip().lower() in QUIT_WORDS:
            break
        output, ok = handle_line(model, config, line, as_json)
        print(output, flush=True)
        all_ok = all_ok and ok
    return 0 if all_ok else 1


def describe(config, checkpoint):
    layers = config["num_layers"]
    return (
        f"Loaded run '{config.get('run_name', '?')}' from {checkpoint}: {config.get('rnn_type', 'rnn')}, "
        f"hidden {config['hidden_dim']}, "
        f"{layers} layer{'s' if layers > 1 else ''}, trained on lengths "
        f"{config['min_seq_len']}-{config['max_seq_len']} with digits 0-{config['max_number']}."
    )


def list_runs(root):
    """A table of the runs under root: the one loaded by default is marked with *."""
    found = runs.find_runs(root)
    if not found:
        return f"no runs under {root}; train one with: python train_cls_rnn.py"
    default = runs.newest_run(found)["path"]
    lines = [f"  {'run folder':<40} {'steps':>7} {'accuracy':>9}  finished"]
    for info in reversed(found):
        accuracy = "-" if info["accuracy"] is None else f"{100 * info['accuracy']:.1f}%"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info["time"]))
        state = "" if info["finished"] else "  (not finished)"
        if info.get("interrupted"):
            state = "  (stopped early)"
        mark = "*" if info["path"] == default else " "
        lines.append(f"{mark} {info['path']:<40} {info['steps']:>7} {accuracy:>9}  {when}{state}")
    return "\n".join(lines + ["* loaded when no --save_dir or --checkpoint is given; accuracy: lengths "
                                "of training, on the run's own evaluation set"])


def load_model(args):
    """The model the flags ask for: a checkpoint, a folder, or the newest run under ./output."""
    if args.checkpoint is None and args.save_dir is None:
        found = runs.find_runs(runs.DEFAULT_OUTPUT)
        if found:
            return load_trained_model(runs.newest_run(found)["path"])
    return load_trained_model(args.save_dir or runs.DEFAULT_OUTPUT, args.checkpoint)


# ----------------------------------------------------------------------------
# 5. Command line
# ----------------------------------------------------------------------------


def build_parser():
    p = argparse.ArgumentParser(
        description="Predict the sum of a digit sequence modulo max_number + 1 with a trained RNN.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("sequence", nargs="*", help="a sequence to answer once (e.g. 3 7 1 9); none: read input")
    p.add_argument("--save_dir", default=None,
                   help="a run folder (args.pt + model_step_N.pt), or a folder of run folders (its newest run); "
                        "default: the run under ./output that finished last")
    p.add_argument("--checkpoint", help="a specific model_step_N.pt (its folder must hold the args.pt of its run); "
                   "default: the newest in the run folder")
    p.add_argument("--list", action="store_true", help="list the runs under --save_dir (default ./output) and exit")
    p.add_argument("--json", action="store_true", help="one JSON object per answer")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if hasattr(sys.stdin, "reconfigure"):  # undecodable bytes become an invalid line, not a crash
        sys.stdin.reconfigure(errors="replace")
    if args.list:
        print(list_runs(args.save_dir or runs.DEFAULT_OUTPUT))
        return 0
    try:
        model, config, checkpoint = load_model(args)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    # what the audit found, if it judged these weights (rnn_tutorial/verdicts.py): said after the load line
    known, proven, note = verdicts.read(os.path.dirname(os.path.abspath(checkpoint)), model.state_dict())
    config = {**config, "proven": proven}
    loaded = "\n".join([describe(config, checkpoint)] + [line for line in (known, note) if line])

    if args.sequence:
        print(loaded, file=sys.stderr)
        output, ok = handle_line(model, config, " ".join(args.sequence), args.json)
        print(output, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    if sys.stdin.isatty():
        print(loaded)
        return interactive(model, config, args.json)
    print(loaded, file=sys.stderr)
    return piped(model, config, args.json, sys.stdin)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C while loading or in a piped session
        sys.exit(130)
