"""Experiment tracking: SwanLab, local by default, imported only when a run uses it.

The article calls swanlab.init and swanlab.log directly. Here the calls go
through Tracker so that a run works the same with tracking off (mode
'disabled' never imports SwanLab), so that nothing reaches the network unless
--swanlab_mode online is asked for, and so that a SwanLab that cannot start
(online mode without a login, say) stops the run in one line before it has
written anything. Its flags are registered here (add_flags), and open_run
starts a run: SwanLab, then the run folder.
"""

from rnn_tutorial import runs


class TrackingError(Exception):
    """SwanLab could not start; the message says why and what to do."""


class Tracker:
    """A thin SwanLab wrapper; mode 'disabled' never imports SwanLab at all."""

    def __init__(self, config):
        self.swanlab = None
        if config["swanlab_mode"] == "disabled":
            return
        import swanlab

        try:
            swanlab.init(
                mode=config["swanlab_mode"],
                project=config["swanlab_project"],
                name=config["run_name"],
                log_dir=config["swanlab_dir"],
                config=dict(config),
            )
        except Exception as error:  # e.g. online mode without a login
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise TrackingError(
                f"SwanLab could not start in {config['swanlab_mode']} mode: {reason} "
                "(run `swanlab login` first, or use --swanlab_mode local)"
            ) from None
        self.swanlab = swanlab

    def active(self):
        # On Ctrl-C SwanLab's own signal handler closes the run (as "aborted") first.
        return self.swanlab is not None and self.swanlab.has_run()

    def log(self, metrics, step=None):
        if self.active():
            self.swanlab.log(metrics, step=step)

    def finish(self, state="success"):
        if self.active():
            self.swanlab.finish(state=state)


def add_flags(parser):
    group = parser.add_argument_group("SwanLab")
    group.add_argument("--swanlab_mode", choices=["local", "offline", "online", "disabled"], default="local",
                       help="local/offline: logs only under --swanlab_dir; online: sync to the SwanLab cloud")
    group.add_argument("--swanlab_project", default="tutorial_with_rnn", help="SwanLab project name")
    group.add_argument("--swanlab_dir", default="./swanlog", help="where SwanLab writes its logs")


def open_run(config, save_dir, overwrite):
    """SwanLab first (if it cannot start, nothing has been written yet), then the run folder and its config."""
    tracker = Tracker(config)
    try:
        runs.prepare_save_dir(save_dir, overwrite)
        runs.save_config(config, save_dir)
    except BaseException:
        tracker.finish("crashed")
        raise
    return tracker
