"""Check a proof certificate of the audit against a model's weights, independently of the audit.

    python -m rnn_tutorial.check_proof CERT --save_dir RUN        # or --checkpoint model_step_N.pt
    exit 0: valid; 1: invalid (the first region and digit that fail are named); 2: bad input or not supported

Written apart from rnn_tutorial/audit (it imports none of it, nor torch.nn: the weights are read as arrays),
so that the whole argument can be checked in one sitting. Supported: one layer of the plain tanh cell,
h' = tanh(W_ih x_d + b_ih + W_hh h + b_hh), read out by argmax(W_fc h + b_fc), h_0 = 0.

The claim. A certificate holds regions (boxes [lo, hi] of hidden states, float64), each with a label (the
sum mod base it must read out); for each region r and digit d a target next[r, d]; a key length k; and for
each sequence s of k digits (as a base-`base` number, first digit most significant) its region entry[s]. If
  1. labels agree: label[next[r, d]] = label[r] + d and label[entry[s]] = sum(s), mod base;
  2. base cases: the state after every sequence of 1..k-1 digits is read out right, and the state after
     every sequence s of k digits lies in region entry[s];
  3. every region's image under every digit lies inside its target region; and
  4. the read-out is right everywhere in every region (its label's logit beats every other),
then, by induction on the length n >= k, the state the float32 model computes after any sequence s lies in a
region labelled sum(s), so the model answers every sequence of every length right.

The rounding argument. Boxes must hold the float32 states the model computes, not exact ones. A float32
pre-activation is a sum of n = E + H + 2 terms (input weights times the digit's embedding, recurrent weights
times the state, two biases). Summed in any order, any grouping (blocked, pairwise, in two halves as the packed
kernel does), with or without fused multiply-add, each term suffers at most n roundings of relative size
u = 2^-24, so the computed sum errs by at most gamma(n) * T, gamma(n) = n u / (1 - n u), T = sum of |terms|
(Higham, Accuracy and Stability of Numerical Algorithms, 3.1). Over a box, T <= |W_hh| max(|lo|, |hi|) +
|W_ih| |x_d| + |b_ih| + |b_hh|. tanh is increasing, so the exact image of a box of pre-activations is
[tanh(lo), tanh(hi)]; we assume float32 tanh errs by at most 4 units of 2^-24 (4 ulps at |tanh| < 1). The
read-out: each float32 logit errs by at most gamma(H + 1) (|W_fc,j| |h| + |b_j|). This checker computes in
float64; every float64 dot product errs by at most gamma64(N) times its sum of |terms| with N < 1000 terms, so
all its own roundings together stay below 1e-13 T, and 1e-12 T is added to every bound; float64 tanh is taken
to be within 1e-15 of tanh. Assumed: IEEE float32 arithmetic in the model (any order, FMA or not; no
flush-to-zero of values that matter), as on the CPU (on a GPU, cuDNN's RNN may round products to TF32 unless
torch.backends.cudnn.allow_tf32 is False: not covered), the tanh accuracy above, and that the weights read
are the model's.
"""

import argparse
import hashlib
import os
import re
import sys

import torch

U32 = 2.0**-24
SLACK64 = 1e-12  # relative: every float64 rounding of this checker, with room to spare
TANH64 = 1e-15  # float64 tanh's error, absolute
NAMES = ["embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
         "fc.weight", "fc.bias"]
FORMAT = "rnn-sum certificate 1"


class BadInput(Exception):
    pass


def gamma(n, unit=U32):
    return n * unit / (1 - n * unit)


def weights_hash(state):
    """sha256 of the float32 weights, name by name in NAMES' order."""
    digest = hashlib.sha256()
    for name in NAMES:
        digest.update(name.encode() + state[name].detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def newest_checkpoint(folder):
    """The model_step_N.pt of a run folder with the largest N."""
    steps = [(int(m.group(1)), name) for name in os.listdir(folder) if (m := re.fullmatch(r"model_step_(\d+)\.pt", name))]
    if not steps:
        raise BadInput(f"no model_step_N.pt in {folder}")
    return os.path.join(folder, max(steps)[1])


def load(path, what):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a missing, truncated or foreign file: one line, exit 2
        raise BadInput(f"cannot read the {what} {path}: {str(error).splitlines()[0][:200]}") from None


class Cell:
    """The weights in float64, and the interval step and read-out bound of the rounding argument."""

    def __init__(self, state):
        if sorted(state) != sorted(NAMES):
            raise BadInput("not supported: only one layer of the plain tanh cell is (weights "
                           + ", ".join(sorted(set(state) ^ set(NAMES))[:4]) + " differ)")
        w = {name: state[name].detach().double() for name in NAMES}
        if not all(torch.isfinite(v).all() for v in w.values()):
            raise BadInput("the weights hold a value that is not a finite number")
        self.x, self.w_ih, self.w_hh = w["embedding.weight"], w["rnn.weight_ih_l0"], w["rnn.weight_hh_l0"]
        self.bias, self.fc_w, self.fc_b = w["rnn.bias_ih_l0"] + w["rnn.bias_hh_l0"], w["fc.weight"], w["fc.bias"]
        self.hidden, embed = self.w_hh.shape[0], self.x.shape[1]
        if self.w_ih.shape != (self.hidden, embed) or self.w_hh.shape != (self.hidden, self.hidden) or \
                self.fc_w.shape[1] != self.hidden or self.hidden + embed > 400:
            raise BadInput("not supported: the weights' shapes are not one plain cell of at most 400 inputs")
        self.terms = self.hidden + embed + 2
        self.input_side = self.x @ self.w_ih.T  # per token: the digit's share of the pre-activation
        self.input_size = self.x.abs() @ self.w_ih.abs().T + w["rnn.bias_ih_l0"].abs() + w["rnn.bias_hh_l0"].abs()

    def step(self, lo, hi, digits):
        """The box holding every float32 state reached from a float32 state in [lo, hi] by reading the digit."""
        w_pos, w_neg = self.w_hh.clamp(min=0), self.w_hh.clamp(max=0)
        pre_lo = lo @ w_pos.T + hi @ w_neg.T + self.input_side[digits] + self.bias
        pre_hi = hi @ w_pos.T + lo @ w_neg.T + self.input_side[digits] + self.bias
        size = (torch.maximum(lo.abs(), hi.abs()) @ self.w_hh.abs().T + self.input_size[digits]) * (1 + SLACK64)
        slack = (gamma(self.terms) + SLACK64) * size
        return (torch.tanh(pre_lo - slack) - 4 * U32 - TANH64, torch.tanh(pre_hi + slack) + 4 * U32 + TANH64)

    def margin(self, lo, hi, labels):
        """Per box, a lower bound on how much the label's float32 logit beats every other anywhere in the box."""
        big = torch.maximum(lo.abs(), hi.abs())
        each = big @ self.fc_w.abs().T + self.fc_b.abs()  # (boxes, classes): a logit's sum of |terms|
        diff = self.fc_w[labels][:, None, :] - self.fc_w[None, :, :]  # (boxes, classes, hidden)
        low = ((diff.clamp(min=0) @ lo[..., None] + diff.clamp(max=0) @ hi[..., None])[..., 0]
               + self.fc_b[labels][:, None] - self.fc_b[None, :])
        own = each.gather(1, labels[:, None])
        low = low - gamma(self.hidden + 1) * (own + each) - SLACK64 * ((diff.abs() @ big[..., None])[..., 0] + own + each
                                                                       + (self.fc_b[labels][:, None] - self.fc_b).abs())
        low[torch.arange(len(labels)), labels] = torch.inf
        return low.amin(dim=1)


def read_certificate(cert, cell):
    """The certificate's parts, checked for type and shape (bad input otherwise)."""
    if not isinstance(cert, dict) or cert.get("format") != FORMAT:
        raise BadInput(f"not a certificate of this checker (format {FORMAT!r})")
    if cert.get("cell") != "rnn_tanh":
        raise BadInput(f"not supported: cell {cert.get('cell')!r} (only rnn_tanh, one layer)")
    base, k = cert.get("base"), cert.get("k")
    if not isinstance(base, int) or not isinstance(k, int) or not 2 <= base <= len(cell.x) or not 1 <= k <= 6:
        raise BadInput("the certificate's base or key length is missing or out of range")
    try:
        lo, hi = cert["lo"].double(), cert["hi"].double()
        labels, nxt, entry = cert["labels"].long(), cert["next"].long(), cert["entry"].long()
    except (KeyError, AttributeError):
        raise BadInput("the certificate lacks one of lo, hi, labels, next, entry") from None
    regions = len(lo)
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise BadInput("the certificate's regions hold a value that is not a finite number")
    if lo.shape != (regions, cell.hidden) or hi.shape != lo.shape or labels.shape != (regions,) or \
            nxt.shape != (regions, base) or entry.shape != (base**k,):
        raise BadInput("the certificate's tables do not have the shapes its regions and the weights need")
    return base, k, lo, hi, labels, nxt, entry


def check(cert, state, chunk=8192):
    """(valid, message): the four checks of the claim, the first failure named."""
    cell = Cell(state)
    base, k, lo, hi, labels, nxt, entry = read_certificate(cert, cell)
    if cert.get("weights_sha256") != weights_hash(state):
        return False, "the certificate is for other weights (their sha256 differs)"
    regions = len(lo)
    if ((nxt < 0) | (nxt >= regions)).any() or ((entry < 0) | (entry >= regions)).any() or \
            ((labels < 0) | (labels >= base)).any():
        return False, "a target, entry or label is out of range"
    digits = torch.arange(base)
    wrong = (labels[nxt] != (labels[:, None] + digits) % base).nonzero()
    if len(wrong):
        r, d = wrong[0].tolist()
        return False, f"region {r}, digit {d}: its target {int(nxt[r, d])} is labelled {int(labels[nxt[r, d]])}, " \
                      f"not {(int(labels[r]) + d) % base}"
    # 2. the base cases, from the zero state (exact) a digit at a time
    s_lo = s_hi = torch.zeros(1, cell.hidden, dtype=torch.float64)
    sums = torch.zeros(1, dtype=torch.long)
    for length in range(1, k + 1):
        parent, digit = torch.arange(len(sums)).repeat_interleave(base), digits.repeat(len(sums))
        s_lo, s_hi = cell.step(s_lo[parent], s_hi[parent], digit)
        sums = (sums[parent] + digit) % base
        if length < k and (bad := (cell.margin(s_lo, s_hi, sums) <= 0).nonzero()).numel():
            return False, f"base case: the read-out is not sure of the sequence numbered {int(bad[0])} of {length} digits"
    if (bad := (labels[entry] != sums).nonzero()).numel():
        return False, f"base case: the sequence numbered {int(bad[0])} of {k} digits enters a region of another label"
    outside = ((s_lo < lo[entry]) | (s_hi > hi[entry])).any(dim=1).nonzero()
    if len(outside):
        s = int(outside[0])
        return False, f"base case: the state after the sequence numbered {s} of {k} digits is not inside region " \
                      f"{int(entry[s])}"
    # 4. the read-out on every region, and 3. every region's image under every digit inside its target
    least = torch.inf
    for start in range(0, regions, chunk):
        part = slice(start, min(start + chunk, regions))
        margins = cell.margin(lo[part], hi[part], labels[part])
        if (bad := (margins <= 0).nonzero()).numel():
            return False, f"region {start + int(bad[0])}: the read-out is not sure of label " \
                          f"{int(labels[start + int(bad[0])])} everywhere in it"
        least = min(least, float(margins.min()))
        count = part.stop - part.start
        r = torch.arange(part.start, part.stop).repeat_interleave(base)
        d = digits.repeat(count)
        i_lo, i_hi = cell.step(lo[r], hi[r], d)
        t = nxt[r, d]
        leaves = ((i_lo < lo[t]) | (i_hi > hi[t])).any(dim=1).nonzero()
        if len(leaves):
            j = int(leaves[0])
            return False, f"region {int(r[j])}, digit {int(d[j])}: its image is not inside its target region {int(t[j])}"
    return True, f"valid: {regions:,} regions, {regions * base:,} transitions, {base**k:,} base cases of {k} digits; " \
                 f"smallest read-out margin {least:.3g}"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m rnn_tutorial.check_proof", description=__doc__.splitlines()[0])
    p.add_argument("certificate")
    p.add_argument("--save_dir", help="a run folder: its newest model_step_N.pt")
    p.add_argument("--checkpoint", help="a model_step_N.pt (or a study record's seed<N>.pt)")
    args = p.parse_args(argv)
    try:
        if bool(args.save_dir) == bool(args.checkpoint):
            raise BadInput("give one of --save_dir and --checkpoint")
        if args.save_dir and not os.path.isdir(args.save_dir):
            raise BadInput(f"no run folder {args.save_dir}")
        weights = args.checkpoint or newest_checkpoint(args.save_dir)
        state = load(weights, "weights")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise BadInput(f"{weights} holds no state dict of tensors")
        valid, message = check(load(args.certificate, "certificate"), state)
    except BadInput as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(message if valid else f"invalid: {message}")
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())
