"""Engine errors, importable without torch (the CLI maps them to exit codes)."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""
