"""The ways of running RnnClsNet (train_cls_rnn.py) that the recipes and the searches need beyond the article's
forward pass, kept out of the training script, which reads like the article: a mixin of the model class, so that
the model still owns every way its cell is run and no other file re-writes it.

  noisy_states             the batch with Gaussian noise on the state after every digit (--state_noise)
  step_each_digit          every next digit of each of n states at once (the beam search, beam.py)

Each has a fast form for the tanh cell, written for speed (docs/speed.md: a recipe's step near the packed
step's time), and a stepped form for any cell (noisy_states_stepped, step_each_digit_stepped) built from the
model's own run() and step(); the tests hold the fast forms to the stepped ones, gradients included.
"""

import torch
import torch.nn as nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from rnn_tutorial.beam import each_digit_after, select


def tanh_cell(model):
    """Whether the model's cell is nn.RNN's tanh cell, which the fast forms write out."""
    return model.rnn_type == "rnn" and model.rnn.nonlinearity == "tanh"


def layer_weights(rnn, layer):
    """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer of an nn.RNN."""
    return tuple(getattr(rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def packed_offsets(batch_sizes):
    """Where each digit's rows start in packed data: [0, b0, b0 + b1, ...] (one more than digits)."""
    return [0, *torch.cumsum(batch_sizes, 0).tolist()]


def one_digit_back(batch_sizes):
    """For every packed row after the first digit, the row of the same sequence one digit earlier."""
    start = packed_offsets(batch_sizes)
    return torch.cat([torch.arange(start[t - 1], start[t - 1] + int(batch_sizes[t])) for t in range(1, len(batch_sizes))]
                     or [torch.zeros(0, dtype=torch.long)])


class NoisyTanhRecurrence(torch.autograd.Function):
    """o_t = tanh(drive_t + W_hh c_{t-1}), c_t = o_t + n_t (c_{-1} = 0) over packed rows, the backward written out.

    Forward: one addmm and one tanh per digit over the sequences still running. Backward: the one sequential part
    (the gradient reaching c_{t-1} through W_hh) per digit; the weight's gradient as one product over every row.
    The same arithmetic as autograd through the loop (the tests compare them), with a few framework calls a digit.
    """

    @staticmethod
    def forward(ctx, drive, w_hh, added, batch_sizes):
        start, outputs = packed_offsets(batch_sizes), torch.empty_like(drive)
        for t, count in enumerate(batch_sizes.tolist()):
            here, earlier = slice(start[t], start[t] + count), slice(start[t - 1], start[t - 1] + count)
            pre = drive[here] if t == 0 else torch.addmm(drive[here], outputs[earlier] + added[earlier], w_hh.t())
            torch.tanh(pre, out=outputs[here])
        ctx.save_for_backward(w_hh, outputs, added, batch_sizes)
        return outputs

    @staticmethod
    def backward(ctx, grad_outputs):
        w_hh, outputs, added, batch_sizes = ctx.saved_tensors
        start, slope = packed_offsets(batch_sizes), 1 - outputs * outputs  # tanh's derivative at every row
        grad_pre = grad_outputs * slope  # each row's own part; the part through the digit after it is added below
        for t in reversed(range(1, len(batch_sizes))):
            here, count = start[t], int(batch_sizes[t])
            earlier = slice(start[t - 1], start[t - 1] + count)  # the same sequences one digit back
            grad_pre[earlier].addcmul_(grad_pre[here : here + count] @ w_hh, slope[earlier])
        back = one_digit_back(batch_sizes)
        grad_w_hh = grad_pre[start[1]:].t() @ (outputs[back] + added[back])
        return grad_pre, grad_w_hh, None, None


class ModelForms:
    def noisy_states(self, x, seq_lengths, noise):
        """The batch (sorted by length, longest first) run with Gaussian noise of std `noise` added to the whole
        state after every running digit (--state_noise in hardening.py), drawn from torch's global generator in
        one draw (noise_draws). Returns the top layer's state carried after each sequence's last digit (batch,
        hidden), and as PackedSequences (the running digits only) the top state carried after each digit and the
        cell's own top output before the noise.

        For a tanh cell it is NoisyTanhRecurrence over each layer's packed rows (docs/speed.md); other cells step
        one digit at a time (noisy_states_stepped)."""
        if not tanh_cell(self):
            return self.noisy_states_stepped(x, seq_lengths, noise)
        lengths = seq_lengths.cpu()  # sorted longest first, as training's batches are (packing checks it)
        packed = pack_padded_sequence(self.embedding(x), lengths, batch_first=True)
        batch_sizes, below = packed.batch_sizes, packed.data
        added = self.noise_draws(batch_sizes, noise)[:, 0]  # (rows, layers, hidden)
        for layer in range(self.rnn.num_layers):
            w_ih, w_hh, b_ih, b_hh = layer_weights(self.rnn, layer)
            below = NoisyTanhRecurrence.apply(nn.functional.linear(below, w_ih, b_ih + b_hh), w_hh,
                                              added[:, layer].contiguous(), batch_sizes)
        carried = below + added[:, -1]
        last_rows = torch.tensor(packed_offsets(batch_sizes))[lengths - 1] + torch.arange(len(lengths))
        return carried[last_rows], PackedSequence(carried, batch_sizes), PackedSequence(below, batch_sizes)

    def noise_draws(self, batch_sizes, noise, parts=1):
        """noise * N(0, 1) for every part of the state (parts: 2 for an LSTM's h and c) of every layer at every
        running digit, in packing's order: (rows, parts, layers, hidden), in one draw."""
        shape = (int(batch_sizes.sum()), parts, self.rnn.num_layers, self.rnn.hidden_size)
        return torch.randn(shape, device=self.embedding.weight.device).mul_(noise)

    def noisy_states_stepped(self, x, seq_lengths, noise):
        """noisy_states() for any cell: run() once per digit, the same draws added to the state after each."""
        lengths = seq_lengths.cpu()
        batch_sizes = pack_padded_sequence(x, lengths, batch_first=True).batch_sizes
        start, draws = packed_offsets(batch_sizes), None
        embedded, parts, carried, outputs = self.embedding(x), None, [], []
        for t in range(x.shape[1]):
            _, new = self.run(embedded[:, t : t + 1], None if parts is None else self.state_from_parts(parts))
            new = self.state_parts(new)
            if draws is None:
                draws = self.noise_draws(batch_sizes, noise, parts=len(new))
            outputs.append(new[0][-1])
            if t < len(batch_sizes):  # past the longest sequence nothing runs: no noise drawn for it
                count = int(batch_sizes[t])
                here = draws[start[t] : start[t] + count].permute(1, 2, 0, 3)  # (parts, layers, running, hidden)
                new = tuple(part + n for part, n in zip(new, nn.functional.pad(here, (0, 0, 0, x.shape[0] - count))))
            running = (t < lengths).to(x.device).view(1, -1, 1)
            parts = new if parts is None else tuple(torch.where(running, n, o) for n, o in zip(new, parts))
            carried.append(parts[0][-1])
        pack = lambda steps: pack_padded_sequence(torch.stack(steps, dim=1), lengths, batch_first=True)  # noqa: E731
        return carried[-1], pack(carried), pack(outputs)

    def step_each_digit(self, state, base):
        """From each of n states (None: the one initial zero state), one step with every digit 0..base-1: the
        n * base new states, parent by parent (beam.each_digit_after's order), and their logits.

        For a tanh cell, the n hidden products W_hh h are computed once and shared by the base children of each
        state, and each digit's input side is one row of a table: a tenth of the multiplications of stepping
        every child (the beam search's cost, docs/speed.md)."""
        if not tanh_cell(self):
            return self.step_each_digit_stepped(state, base)
        rnn, new, below = self.rnn, [], None
        for layer in range(rnn.num_layers):
            w_ih, w_hh, b_ih, b_hh = layer_weights(rnn, layer)
            if layer == 0:  # every child of one state shares W_hh h; the digit adds its row of the table
                pre = nn.functional.linear(self.embedding.weight[:base], w_ih, b_ih + b_hh)[None]  # (1, base, H)
                if state is not None:
                    pre = (state[0] @ w_hh.t())[:, None, :] + pre
                pre = pre.flatten(0, 1)
            else:
                pre = nn.functional.linear(below, w_ih, b_ih + b_hh)
                if state is not None:
                    pre += (state[layer] @ w_hh.t()).repeat_interleave(base, 0)
            below = pre.tanh_()  # in place: the search's levels hold up to a million states
            new.append(below)
        return torch.stack(new) if len(new) > 1 else below[None], self.fc(below)

    def each_digit_logits(self, state, base, chunk=1024):
        """The logits of step_each_digit without its states, chunk states at a time: the search's widest levels
        need every child's margin but only the beam's states, and n * base states held at once cost more in
        fresh memory than in arithmetic."""
        if state is None:
            return self.step_each_digit(None, base)[1]
        parts = self.state_parts(state)
        return torch.cat([self.step_each_digit(self.state_from_parts([p[:, i : i + chunk] for p in parts]), base)[1]
                          for i in range(0, parts[0].shape[1], chunk)])

    def step_each_digit_stepped(self, state, base):
        """step_each_digit() for any cell: each state copied for every digit, then step()."""
        parents, digits = each_digit_after(1 if state is None else self.state_parts(state)[0].shape[1], base)
        return self.step(None if state is None else select(self, state, parents), digits)
