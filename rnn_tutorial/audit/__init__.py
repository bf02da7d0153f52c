"""Is it really an adder? Judge a trained model on every kind of sequence, and prove it where one can.

A test set drawn like the training data cannot tell "learned the rule" from "fits the data": a model
can be right on 5,000-digit random sequences and still answer "4 followed by 58 zeros" with 0. The task
has one right answer for every sequence, so the audit looks for the input that breaks a model, and then
tries to show that none exists. One module a job, in the order the audit runs them:

  families.py    fixed, seeded kinds of sequence a skeptic would try, judged at every prefix
  searches.py    the shortest wrong sequence: the beam (../beam.py, which training's --hard_share uses
                 too), a gradient search unlike it, and a greedy shortening
  automaton.py   the state as one vector; hidden states quantised to ten, the transition table per
                 digit checked against s -> (s + d) mod 10, and its figure
  intervals.py   interval arithmetic: one rule per operation, composed per cell type (tanh/relu, GRU,
                 LSTM), with float32 rounding bounded outward
  domains.py     the regions' shapes: boxes (any cell), balls (one tanh layer)
  partitions.py  which region each image must land in: by automaton state, or by the running sum and
                 the last k digits
  fixpoint.py    the one fixpoint engine every proof try runs on
  proof.py       the tries, coarse and quick first; the first proof found stands
  dynamics.py    why regions fail: how one step stretches, and the loop the network forgets slowest on
  judge.py       the whole audit of one model (audit()), and what a record keeps of it
  report.py      the verdict line and the report
  records.py     the study's audited records judged again from their kept weights
  __main__.py    the command line

    python -m rnn_tutorial.audit                          # the newest run under ./output
    python -m rnn_tutorial.audit --save_dir ./output/reliable --figure automaton.png

Exit status: 0 when no counterexample was found (proven or not), 1 when one was, 2 for bad input.
The last line printed is the verdict.
"""
