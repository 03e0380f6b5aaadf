"""User-facing errors.

Anything a user can cause (a typo in a key, a missing dataset, a bad checkpoint) raises a
:class:`GantkError`. The CLI prints its message as one paragraph and exits with code 2, so no
traceback reaches the user for problems that are theirs to fix. Real bugs still raise normally.
"""

from __future__ import annotations


class GantkError(Exception):
    """An error the user can fix; the message says what was wrong and what was expected."""

    exit_code = 2
    #: every rank of a data-parallel job meets this error alike, so only rank 0 prints it
    same_on_every_rank = False


class ConfigError(GantkError):
    """A config key, value or file is wrong."""

    same_on_every_rank = True


class PluginError(GantkError):
    """A plugin cannot be found, loaded, or breaks the plugin contract."""

    same_on_every_rank = True


class DataError(GantkError):
    """A dataset cannot be found, downloaded, verified or read."""


class CheckpointError(GantkError):
    """A checkpoint folder is missing, incomplete or does not match its config."""


class TrainingStopped(GantkError):
    """Training stopped early on request (SIGINT/SIGTERM) after saving a checkpoint."""

    same_on_every_rank = True

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class NonFiniteError(GantkError):
    """A loss or the weights became NaN/inf and the policy is to stop."""

    same_on_every_rank = True


class RunFailed(GantkError):
    """Something after a training step failed (a sample grid, an evaluation); the step was saved first."""

    exit_code = 1


class StepFailed(GantkError):
    """The first training step failed before anything was trained: usually settings the networks cannot take."""

    same_on_every_rank = True
