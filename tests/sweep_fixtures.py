"""Sweep runners for the engine's tests only: a run that kills its own worker process."""

import os


def kill_my_worker(name, seed, flags):
    """What a segfault or the out-of-memory killer would do to a run: the worker process dies."""
    os._exit(3)
