"""Everything around the tutorial's code: run folders, limits, tracking, the console, and the studies.

train_cls_rnn.py and predict_cls_rnn.py at the top of the repository hold the
tutorial itself; this package holds what a reader of the article does not need
to follow it. Library modules are imported as `rnn_tutorial.<name>` (the
repository root on sys.path); the scripts in this folder run as
`python rnn_tutorial/<name>.py` and put the root there first.
"""
