"""The errors every checkpoint module raises: one line that says what was expected."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not hold what was expected."""


class DownloadError(CheckpointError):
    """A checkpoint URL that could not be fetched (offline, unreachable, not found)."""
