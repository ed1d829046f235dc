"""The one exception type users see: a one-line message naming the file, video or setting."""


class AvlocError(Exception):
    """A problem with the user's input. The CLI prints it as one line and exits non-zero."""
