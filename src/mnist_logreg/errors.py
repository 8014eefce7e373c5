"""The one exception type the CLI turns into a one-line message and exit code 2."""


class UserError(Exception):
    """A problem with what the user gave us (a flag, a file, a folder), not a bug.

    The CLI prints ``mnist-logreg: error: <message>`` and exits with code 2, without a
    traceback. Library callers get an ordinary exception (it subclasses ``ValueError``
    behaviour through ``DataError``/``ConfigError`` where that reads better).
    """


class DataError(UserError, ValueError):
    """A dataset file is missing, corrupt or inconsistent."""


class ConfigError(UserError, ValueError):
    """A configuration value is out of range or of the wrong kind."""


class FileSystemError(UserError):
    """The system refused a file operation: disk full, permission denied, a path that is a file."""
