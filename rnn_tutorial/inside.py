"""Looking inside trained networks: which half of the task is learned when, and what the state holds.

Two views of one run, computed by one sweep runner (look_inside):

- the residue view over time: at every evaluation, how often the answer is
  right modulo 2 and modulo 5 (train() records accuracy_mod2/accuracy_mod5);
- the learned automaton: the last layer's final hidden state of 1,500 test
  sequences, projected onto the three directions along which the ten class
  means differ most (the principal components of the means), each point
  labelled with the sequence's sum mod 10. A network that keeps a running sum
  shows ten separate clusters; one that only knows the sum mod 5 folds pairs
  of them (s and s+5) together.

study.py runs it for a few working and failing seeds; figures.py draws it.
"""

import torch

from rnn_tutorial import scoring

PCA_SEQUENCES = 1_500


def principal_components(states, labels, k=3):
    """Project states onto the k directions along which the class means differ most.

    The principal components of the ten class means (one per sum mod 10) show
    how the classes are arranged, unblurred by how states vary within a class.
    Returns (projection, share of the class means' variance each direction holds,
    share of all the states' variance that lies along the k directions).
    """
    centre = states.mean(dim=0)
    means = torch.stack([states[labels == c].mean(dim=0) for c in labels.unique()]) - centre
    _, singular_values, v = torch.linalg.svd(means, full_matrices=False)
    variance = singular_values**2
    projection = (states - centre) @ v[:k].T
    total = ((states - centre) ** 2).sum()
    return projection, (variance[:k] / variance.sum()).tolist(), float((projection**2).sum() / total)


def cluster_separation(points, labels):
    """How far apart the ten clusters are: the gap between the two nearest class means, in units of
    the mean distance of a state from its own class mean (above 1: the nearest two do not overlap)."""
    points, labels = torch.as_tensor(points), torch.as_tensor(labels)
    classes = labels.unique()
    means = torch.stack([points[labels == c].mean(dim=0) for c in classes])
    radius = torch.stack([(points[labels == c] - m).norm(dim=1).mean() for c, m in zip(classes, means)]).mean()
    gaps = torch.cdist(means, means) + torch.diag(torch.full((len(classes),), float("inf")))
    return float(gaps.min() / radius)


def look_inside(name, seed, flags):
    """Sweep runner: train one run; return its residue curves and its hidden states in 3 PCA dimensions."""
    result = scoring.train_run(name, seed, flags)
    model, config = result["model"], result["config"]
    inputs, lengths, targets = scoring.test_set(config["min_seq_len"], config["max_seq_len"],
                                                scoring.TEST_SAMPLES, config["max_number"])
    every = torch.arange(0, len(targets), len(targets) // PCA_SEQUENCES)[:PCA_SEQUENCES]  # all lengths, still sorted
    inputs, lengths, targets = inputs[every], lengths[every], targets[every]
    with torch.inference_mode():
        states = model.eval().final_hidden(inputs, lengths, lengths_sorted=True)
    points, explained, share_of_all = principal_components(states, targets)
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
            "share_of_all_variance": round(share_of_all, 4),
        },
        **scoring.score(model, config),
    }
