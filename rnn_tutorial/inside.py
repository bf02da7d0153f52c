"""Looking inside trained networks: which half of the task is learned when, and what the state holds.

Two views of one run, computed by one sweep runner (look_inside):

- the residue view over time: at every evaluation, how often the answer is
  right modulo 2 and modulo 5 (train() records accuracy_mod2/accuracy_mod5);
- the learned automaton: the last layer's final hidden state of 1,500 test
  sequences, projected onto its first three principal components, each point
  labelled with the sequence's sum mod 10. A network that keeps a running sum
  shows ten separate clusters; one that only knows the sum mod 5 folds pairs
  of them (s and s+5) together.

study.py runs it for a few working and failing seeds; figures.py draws it.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

import reproduce  # noqa: E402  (training and test sets)

PCA_SEQUENCES = 1_500


@torch.inference_mode()
def final_hidden_states(model, inputs, lengths):
    """h_n of the last layer, (batch, hidden), for a padded batch sorted by decreasing length."""
    model.eval()
    packed = pack_padded_sequence(model.embedding(inputs), lengths, batch_first=True, enforce_sorted=True)
    _, h_n = model.rnn(packed)
    if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
        h_n = h_n[0]
    return h_n[-1]


def principal_components(states, k=3):
    """(projection onto the first k principal components, share of the variance each explains)."""
    centred = states - states.mean(dim=0)
    _, singular_values, v = torch.linalg.svd(centred, full_matrices=False)
    variance = singular_values**2
    return centred @ v[:k].T, (variance[:k] / variance.sum()).tolist()


def look_inside(name, seed, flags):
    """Sweep runner: train one run; return its residue curves and its hidden states in 3 PCA dimensions."""
    result = reproduce.train_run(name, seed, flags)
    model, config = result["model"], result["config"]
    inputs, lengths, targets = reproduce.test_set(config["min_seq_len"], config["max_seq_len"],
                                                  reproduce.TEST_SAMPLES, config["max_number"])
    every = torch.arange(0, len(targets), len(targets) // PCA_SEQUENCES)[:PCA_SEQUENCES]  # all lengths, still sorted
    inputs, lengths, targets = inputs[every], lengths[every], targets[every]
    points, explained = principal_components(final_hidden_states(model, inputs, lengths))
    curve_keys = ("step", "accuracy", "accuracy_mod2", "accuracy_mod5", "eval_loss")
    return {
        "run_name": name,
        "seed": seed,
        "flags": config,
        "wall_time_s": round(result["wall_time_s"], 2),
        "curve": [{k: h[k] for k in curve_keys if k in h} for h in result["history"]],
        "pca": {
            "points": [[round(x, 4) for x in p] for p in points.tolist()],
            "sum_mod": targets.tolist(),
            "lengths": lengths.tolist(),
            "explained_variance": [round(x, 4) for x in explained],
        },
        **reproduce.score(model, config),
    }
