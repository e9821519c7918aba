"""User-facing errors: each message is one line naming the problem and the fix. The CLI prints
them without a traceback. This module imports nothing heavy, so bad flags fail in milliseconds."""


class UserError(Exception):
    """Base of every error caused by input the user can fix."""


class ConfigError(UserError, ValueError):
    """A bad option."""


class DataError(UserError, RuntimeError):
    """Data that cannot be loaded; the message says what is missing and how to get it."""


class TrainingDiverged(UserError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""
