"""The article's own two scripts, read from the article at run time and run unchanged.

Nothing of the article's code is stored in this repository: it is cut out of
../shared/seeds/article_zh.md (the appendix) when needed. SwanLab is replaced by
a stand-in that only notes when each step was logged, so the scripts run
offline and can be timed. Used by benchmark.py (speed), article_check.py (its
accuracy on our test sets) and the compatibility tests.
"""

import contextlib
import os
import re
import sys
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ARTICLE = os.path.join(ROOT, "..", "shared", "seeds", "article_zh.md")
TRAINING_HEADING = "### 附录：训练代码"
PREDICTOR_HEADING = "### 附录：评估代码"


def appendix_code(heading, article_path=DEFAULT_ARTICLE):
    """The first python block after a heading of the article."""
    with open(article_path, encoding="utf-8") as f:
        text = f.read()
    return re.search(r"```python\n(.*?)```", text[text.index(heading):], re.S).group(1)


def training_code(article_path=DEFAULT_ARTICLE):
    """The appendix train_cls_rnn.py, as printed."""
    return appendix_code(TRAINING_HEADING, article_path)


def predictor_code(article_path=DEFAULT_ARTICLE):
    """The appendix predict_cls_rnn.py, as printed."""
    return appendix_code(PREDICTOR_HEADING, article_path)


def install_stopwatch_swanlab():
    """A stand-in swanlab module that only remembers when each step was logged."""
    stamps = []
    fake = types.ModuleType("swanlab")
    fake.init = lambda *a, **k: None
    fake.finish = lambda *a, **k: None
    fake.has_run = lambda: True

    def log(metrics, step=None):
        if step is not None and not stamps or step is not None and step > stamps[-1][0]:
            stamps.append((step, time.perf_counter()))

    fake.log = log
    sys.modules["swanlab"] = fake
    return stamps


def exec_training(argv, code):
    """Run the article's training script (its text) with these arguments, in this process.

    One torch thread, SwanLab replaced by the stopwatch, its prints silenced.
    Returns the stopwatch stamps of its logging calls.
    """
    import torch

    torch.set_num_threads(1)
    stamps = install_stopwatch_swanlab()
    compiled = compile(code, "article_train_cls_rnn.py", "exec")
    sys.argv = ["train_cls_rnn.py", *argv]
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        exec(compiled, {"__name__": "__main__"})
    return stamps
