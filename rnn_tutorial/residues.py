"""What does a model stuck at 50% (or 20%) know? Score its answers modulo 2 and modulo 5.

The sum mod 10 is the pair (sum mod 2, sum mod 5) (Chinese remainder theorem),
and a network can learn one half without the other. A model that knows the
residue mod 5 but guesses the parity is right half the time, with loss ln 2;
one that knows only the parity is right a fifth of the time, with loss ln 5.
This trains the given experiment and seeds (the same runs as reproduce.py)
and scores each on the same 10,000 test sequences.

    python rnn_tutorial/residues.py --run deeper_rnn --seeds 1 3
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402

import reproduce  # noqa: E402  (experiments and test sets)


def residue_accuracies(model, test_set, modulus):
    """Accuracy of the answer itself and of its residue modulo each proper divisor of the modulus."""
    inputs, lengths, targets = test_set
    with torch.inference_mode():
        predictions = model.eval()(inputs, lengths, lengths_sorted=True).argmax(dim=1)
    scores = {modulus: (predictions == targets).float().mean().item()}
    for d in range(2, modulus):
        if modulus % d == 0:
            scores[d] = (predictions % d == targets % d).float().mean().item()
    return scores


def main():
    p = argparse.ArgumentParser(description="Score trained models modulo the divisors of the modulus.")
    p.add_argument("--run", choices=list(reproduce.EXPERIMENTS), default="deeper_rnn")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 3])
    args = p.parse_args()
    print(f"| {args.run}, seed | right (mod 10) | right mod 5 | right mod 2 |\n|---|---|---|---|")
    for seed in args.seeds:
        result = reproduce.train_experiment(args.run, seed)
        config = result["config"]
        test_set = reproduce.test_set(config["min_seq_len"], config["max_seq_len"], reproduce.TEST_SAMPLES,
                                      config["max_number"])
        scores = residue_accuracies(result["model"], test_set, config["max_number"] + 1)
        print(f"| {seed} | " + " | ".join(f"{100 * scores[d]:.1f}%" for d in sorted(scores, reverse=True)) + " |")


if __name__ == "__main__":
    main()
