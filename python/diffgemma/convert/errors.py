"""The one exception type the converter raises for problems a user can fix."""


class ConvertError(Exception):
    """Bad input or options: a missing file, an unsupported checkpoint, a truncated download.

    `diffgemma-convert` prints the message as a single line and exits with status 1; no
    traceback, because the message is meant to say what to do.
    """
