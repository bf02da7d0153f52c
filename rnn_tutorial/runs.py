"""Run folders: where a training run writes, how it is written, and how a finished run is found again.

One folder per run (./output/<run_name> unless --save_dir) holds args.pt,
args.json, model_step_{N}.pt and, once the run ends, result.json. Every file is
written atomically, an earlier run is never overwritten without --overwrite,
and nothing but plain data (and argparse.Namespace, the article's args.pt) is
ever unpickled. Not in train_cls_rnn.py because none of it is the tutorial: the
article's script calls torch.save twice and nothing more.
"""

import argparse
import json
import os
import re
import tempfile
import time

import torch

from rnn_tutorial import limits

CHECKPOINT_RE = re.compile(r"^model_step_(\d+)\.pt$")
RUN_FILES = ("args.pt", "args.json", "result.json")
DEFAULT_OUTPUT = "./output"


class CheckpointError(Exception):
    """A training folder or checkpoint that cannot be used; the message says why."""


def default_save_dir(run_name):
    return os.path.join(DEFAULT_OUTPUT, run_name)


# ----------------------------------------------------------------------------
# Writing: atomically, and never over another run
# ----------------------------------------------------------------------------


def write_atomic(path, write, mode="wb"):
    """write(file) into a temporary file, then rename it to path: a crash never leaves half a file."""
    fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-",
                                    suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def save_atomic(obj, path):
    """torch.save, atomically."""
    write_atomic(path, lambda f: torch.save(obj, f))


def write_json_atomic(obj, path, **dump_options):
    """json.dump (one trailing newline), atomically."""
    write_atomic(path, lambda f: f.write(json.dumps(obj, **dump_options) + "\n"), mode="w")


def list_checkpoints(save_dir):
    """[(step, path)] of the model_step_N.pt files in save_dir, oldest first."""
    if not os.path.isdir(save_dir):
        return []
    found = []
    for name in os.listdir(save_dir):
        match = CHECKPOINT_RE.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(save_dir, name)))
    return sorted(found)


def run_files(save_dir):
    """The files a training run writes that are already in save_dir."""
    names = [name for name in RUN_FILES if os.path.exists(os.path.join(save_dir, name))]
    return names + [os.path.basename(path) for _, path in list_checkpoints(save_dir)]


def existing_run_error(save_dir):
    """Why a new run may not write into save_dir without --overwrite, or None."""
    existing = run_files(save_dir)
    if not existing:
        return None
    shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
    return (f"{save_dir} already holds a run ({shown}); pass --overwrite to replace it, "
            "or keep it and give this run another --run_name (or --save_dir)")


def prepare_save_dir(save_dir, overwrite):
    """Create save_dir; refuse to mix runs unless overwrite, which deletes the old run's files.

    Only the files a run writes (args.pt, args.json, result.json,
    model_step_*.pt) are deleted; anything else in the folder is left alone.
    """
    existing = run_files(save_dir)
    if existing and not overwrite:
        raise CheckpointError(existing_run_error(save_dir))
    os.makedirs(save_dir, exist_ok=True)
    for name in existing:
        os.remove(os.path.join(save_dir, name))
    if existing:
        print(f"--overwrite: removed {len(existing)} files of the previous run in {save_dir}")


def save_config(config, save_dir):
    """args.pt in the article's format (an argparse.Namespace of the flags), args.json for people and tools.

    The article's own predict_cls_rnn.py reads this args.pt unchanged; ours
    reads it with weights_only=True and argparse.Namespace as the only class
    allowed.
    """
    save_atomic(argparse.Namespace(**config), os.path.join(save_dir, "args.pt"))
    write_json_atomic(config, os.path.join(save_dir, "args.json"), indent=2)


def save_result(result, save_dir):
    """result.json: how the run ended. Its presence marks a run that finished (or was stopped)."""
    final = result["final"]
    write_json_atomic({
        "run_name": result["config"]["run_name"],
        "steps": result["steps"],
        "total_steps": result["config"]["total_steps"],
        "interrupted": result["interrupted"],
        "accuracy": final["accuracy"],
        "accuracy_long": final["accuracy_long"],
        "wall_time_s": round(result["wall_time_s"], 2),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        **({"restarted_at": result["restarted_at"]} if result.get("restarted_at") else {}),  # --restart_by
    }, os.path.join(save_dir, "result.json"), indent=2)


# ----------------------------------------------------------------------------
# Reading: plain data only, checked before a model is built from it
# ----------------------------------------------------------------------------


def load_plain(path, what):
    """torch.load with weights_only=True; argparse.Namespace is the one class allowed (args.pt)."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found") from None
    except Exception as error:
        if "weights_only" in str(error) or "Unsupported global" in str(error):
            raise CheckpointError(f"{path} holds objects other than plain data; refusing to load it") from None
        raise CheckpointError(f"{path} is not a readable {what} (corrupt or truncated?)") from None


def read_config(config_path):
    """The config of a run folder: args.pt as a Namespace (the article's and ours) or a plain dict
    (earlier versions of this project), checked before any model is built from it."""
    config = load_plain(config_path, "config")
    if isinstance(config, argparse.Namespace):
        config = vars(config)
    if not isinstance(config, dict) or not all(k in config for k in limits.MODEL_KEYS):
        raise CheckpointError(f"{config_path} is not a config written by train_cls_rnn.py")
    problem = limits.model_config_error(config)
    if problem:
        raise CheckpointError(f"{config_path} describes an impossible model: {problem}")
    return config


def find_checkpoint(save_dir=DEFAULT_OUTPUT, checkpoint=None):
    """(checkpoint path, its run's config) for a folder or a named checkpoint file.

    Without a checkpoint: the newest model_step_N.pt of save_dir or, when
    save_dir only holds run folders, of the run that finished last. The config
    is always the args.pt beside the checkpoint.
    """
    if checkpoint is None:
        if not os.path.isdir(save_dir):
            raise CheckpointError(f"{save_dir} does not exist; train a model with train_cls_rnn.py first")
        found = list_checkpoints(save_dir)
        if not found:
            runs = find_runs(save_dir)
            if not runs:
                raise CheckpointError(f"no model_step_N.pt checkpoint in {save_dir} or its run folders; "
                                      "train one with train_cls_rnn.py")
            found = list_checkpoints(newest_run(runs)["path"])
        checkpoint = found[-1][1]
    elif not os.path.isfile(checkpoint):
        raise CheckpointError(f"{checkpoint} not found")
    config_path = os.path.join(os.path.dirname(checkpoint), "args.pt")
    if not os.path.isfile(config_path):
        raise CheckpointError(f"{config_path} not found: cannot tell which model {checkpoint} belongs to")
    return checkpoint, read_config(config_path)


def describe_run_folder(path):
    """What a run folder holds, for choosing and listing runs; None if it holds no run.

    finished: it wrote result.json (ours), or its newest checkpoint is at
    total_steps (the article's script, or a run that crashed at the very end).
    """
    found = list_checkpoints(path)
    if not found or not os.path.isfile(os.path.join(path, "args.pt")):
        return None
    newest_step, newest = found[-1]
    info = {"path": path, "steps": newest_step, "accuracy": None, "finished": False,
            "time": os.path.getmtime(newest)}
    result_path = os.path.join(path, "result.json")
    try:
        with open(result_path) as f:
            result = json.load(f)
        info.update(finished=True, time=os.path.getmtime(result_path), accuracy=result.get("accuracy"),
                    interrupted=result.get("interrupted", False))
    except (OSError, ValueError):
        try:
            info["finished"] = newest_step >= read_config(os.path.join(path, "args.pt")).get("total_steps", 0)
        except CheckpointError:
            pass
    return info


def find_runs(root):
    """The runs in root itself and in its immediate subfolders, oldest first."""
    if not os.path.isdir(root):
        return []
    candidates = [root] + sorted(os.path.join(root, name) for name in os.listdir(root)
                                 if os.path.isdir(os.path.join(root, name)))
    runs = [info for path in candidates if (info := describe_run_folder(path))]
    return sorted(runs, key=lambda info: info["time"])


def newest_run(runs):
    """The run that finished last; if none has finished, the one written to last."""
    finished = [info for info in runs if info["finished"]]
    return (finished or runs)[-1]
