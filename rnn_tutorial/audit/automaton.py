"""The model as a state machine, and the automaton it runs.

  flat_state, unflat_state  the whole recurrent state as one vector per sequence (every layer's h, then for
                            an LSTM every c), the form the proofs' regions take
  visited_states            the states after every prefix of random sequences
  extract_automaton         each state quantised to ten (the nearest mean of the states it answers s for);
                            where each digit takes each of them, checked against s -> (s + d) mod 10
  draw_automaton            that table as a figure
"""

import math

import torch


def flat_state(model, state):
    """The whole state as one vector per sequence, (batch, size)."""
    return torch.cat([p.transpose(0, 1).reshape(p.shape[1], -1) for p in model.state_parts(state)], dim=1)


def unflat_state(model, flat):
    layers, hidden = model.rnn.num_layers, model.rnn.hidden_size
    parts = flat.reshape(flat.shape[0], -1, layers, hidden).permute(1, 2, 0, 3).contiguous()
    return model.state_from_parts(list(parts))


@torch.inference_mode()
def visited_states(model, base, count=256, length=60, seed=0):
    """Whole states after every prefix of random sequences (lengths 1-length): (states, true sums, the model's
    answers)."""
    generator = torch.Generator().manual_seed(seed)
    digits = torch.randint(0, base, (count, length), generator=generator)
    hx, states, answers = None, [], []
    for t in range(length):
        hx, logits = model.step(hx, digits[:, t])
        states.append(flat_state(model, hx)), answers.append(logits.argmax(dim=1))
    return torch.cat(states), (digits.cumsum(dim=1) % base).T.reshape(-1), torch.cat(answers)


@torch.inference_mode()
def extract_automaton(model, base):
    """The automaton the network runs: each state quantised to the nearest mean of the states it answers s
    for (what it believes the sum is); the table of where each digit takes each such state."""
    states, sums, answers = visited_states(model, base)
    means = torch.stack([states[answers == s].mean(dim=0) if (answers == s).any() else
                         torch.full_like(states[0], math.inf) for s in range(base)])
    quantised = torch.cdist(states, means).argmin(dim=1)
    table, purity = [], []
    for s in range(base):
        mine = states[quantised == s][:200]
        row, row_purity = [], []
        for d in range(base):
            if len(mine) == 0:
                row.append(None), row_purity.append(0.0)
                continue
            hx, _ = model.step(unflat_state(model, mine), torch.full((len(mine),), d))
            landed = torch.cdist(flat_state(model, hx), means).argmin(dim=1)
            target = int(landed.mode().values)
            row.append(target), row_purity.append(float((landed == target).float().mean()))
        table.append(row), purity.append(row_purity)
    adder = all(table[s][d] == (s + d) % base for s in range(base) for d in range(base))
    return {"table": table, "purity": purity, "is_adder": adder,
            "quantisation_agrees": float((quantised == sums).float().mean())}, states, sums, means


def draw_automaton(automaton, path, title):
    """The transition table as a grid: green where it adds, red where it does not; pale where states disagree."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, purity = automaton["table"], automaton["purity"]
    base = len(table)
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    for s in range(base):
        for d in range(base):
            right = table[s][d] == (s + d) % base
            color = ("#58D68D" if right else "#EC7063") if purity[s][d] == 1 else ("#ABEBC6" if right else "#F5B7B1")
            ax.add_patch(plt.Rectangle((d, s), 1, 1, facecolor=color, edgecolor="white"))
            ax.text(d + 0.5, s + 0.5, "?" if table[s][d] is None else table[s][d], ha="center", va="center",
                    fontsize=9)
    ax.set_xlim(0, base), ax.set_ylim(base, 0)
    ax.set_xticks([d + 0.5 for d in range(base)], range(base))
    ax.set_yticks([s + 0.5 for s in range(base)], range(base))
    ax.set_xlabel("next digit"), ax.set_ylabel("state (the running sum the network holds)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
