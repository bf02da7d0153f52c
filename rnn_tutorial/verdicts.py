"""The audit's verdict left in the run folder it judged (audit.json), and what the predictor says of it.

The audit (python -m rnn_tutorial.audit) writes it; predict_cls_rnn.py reads it when it loads a model from
that folder, so that a learner asking the model knows what is known of it: proven for every length (and
whether an independent checker verified the certificate), no counterexample found but not proven, or wrong
on a given sequence. A verdict is tied to the weights it judged by their sha256 (check_proof.weights_hash):
one whose weights no longer match the checkpoint loaded is ignored, with a one-line note.

  write(folder, checkpoint, state_dict, result, certificate)   after an audit
  read(folder, state_dict)    -> (what to say, or None; whether the model is proven), or a note when stale
"""

import json
import os
import time

from rnn_tutorial.check_proof import weights_hash
from rnn_tutorial.runs import write_json_atomic

FILE = "audit.json"


def write(folder, checkpoint, state_dict, result, counterexample_text=None, certificate=None):
    """audit.json: the verdict, the weights' hash, the counterexample as text, and the certificate's path and
    check (a dict: path, checked, message), if one was written."""
    proof = result["proof"]
    write_json_atomic({
        "checkpoint": os.path.basename(checkpoint), "weights_sha256": weights_hash(state_dict),
        "verdict": result["verdict"], "proven": bool(proof["proven"]), "counterexample": counterexample_text,
        "certificate": certificate, "audited_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }, os.path.join(folder, FILE), indent=1)


def read(folder, state_dict):
    """(the line the predictor shows, or None without a verdict; whether the model is proven for every length)
    and a note (or None) when the folder's verdict is for other weights or cannot be read."""
    path = os.path.join(folder, FILE)
    if not os.path.isfile(path):
        return None, False, None
    try:
        with open(path) as f:
            saved = json.load(f)
        same = saved["weights_sha256"] == weights_hash(state_dict)
        proven, wrong, cert = bool(saved["proven"]), saved.get("counterexample"), saved.get("certificate")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, False, f"note: {path} cannot be read; ignored"
    if not same:
        return None, False, f"note: {path} judged other weights than this checkpoint's; ignored"
    if wrong:
        return f"audit: wrong on `{wrong}` (audit)", False, None
    if proven:
        checked = "certificate checked" if cert and cert.get("checked") else "no certificate checked"
        return f"audit: proven for every length ({checked})", True, None
    return "audit: no counterexample found, not proven", False, None
