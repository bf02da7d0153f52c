"""Hand-built models for the audit's tests: a plain RNN that adds exactly, and the same with a planted flaw."""

import torch

import train_cls_rnn as T


def exact_adder(strength=20.0, swap=None, base=10):
    """A plain nn.RNN that adds mod base exactly: unit (s, d) is on when the running sum is s and the last digit
    d; one more unit says that a digit has been read. swap=(a, b): units (a, 0) and (b, 0) read each other's
    state."""
    A = strength
    size = base * base + 1
    model = T.RnnClsNet(vocab_size=base, embed_dim=base, hidden_dim=size, num_layers=1, cls_num=base)

    def unit(s, d):
        return base * s + d

    started = size - 1
    w_ih, w_hh, bias = torch.zeros(size, base), torch.zeros(size, size), torch.zeros(size)
    for s in range(base):
        for d in range(base):
            u = unit(s, d)
            previous = (s - d) % base
            if swap and d == 0 and s in swap:
                previous = swap[1] if s == swap[0] else swap[0]
            w_ih[u, d] = A
            for e in range(base):
                w_hh[u, unit(previous, e)] = A
            first = previous == 0  # from the initial state, whose sum is 0
            w_hh[u, started] = (base - 1) * A - (A if first else 0)
            bias[u] = -1.5 * A + (A if first else 0)
    w_ih[started, :] = A
    w_hh[started, started] = A
    fc = torch.zeros(base, size)
    for s in range(base):
        for d in range(base):
            fc[s, unit(s, d)] = 1.0
    with torch.no_grad():
        model.embedding.weight.copy_(torch.cat([torch.eye(base), torch.zeros(1, base)]))
        model.rnn.weight_ih_l0.copy_(w_ih)
        model.rnn.weight_hh_l0.copy_(w_hh)
        model.rnn.bias_ih_l0.copy_(bias)
        model.rnn.bias_hh_l0.zero_()
        model.fc.weight.copy_(fc)
        model.fc.bias.zero_()
    return model.eval()


def adder_fooled_by_nines(base=10, step=0.1, pull=3.6):
    """exact_adder plus one unit that counts nines, leaking (c <- tanh(c + step) on a 9, tanh(c) otherwise),
    and adds pull * c to the logit of 0 (the right logit leads by 2): wrong from eight nines in a row, which
    random digits almost never hold, but every 9 lowers the margin a little, so a search that follows
    the margin gets there."""
    adder = exact_adder(base=base)
    size = adder.rnn.hidden_size + 1
    model = T.RnnClsNet(vocab_size=base, embed_dim=base, hidden_dim=size, num_layers=1, cls_num=base)
    with torch.no_grad():
        for name, value in adder.state_dict().items():
            mine = model.get_parameter(name)  # the adder's weights in the top-left corner, the rest zero
            mine.zero_()
            mine[tuple(slice(0, n) for n in value.shape)] = value
        model.rnn.weight_ih_l0[size - 1, base - 1] = step
        model.rnn.weight_hh_l0[size - 1, size - 1] = 1.0
        model.fc.weight[0, size - 1] = pull
    return model.eval()
