"""The one exception type users see: a one-line message naming the file, video or setting."""


class AvlocError(Exception):
    """A problem with the user's input. The CLI prints it as one line and exits non-zero.

    Messages often quote text from a broken file or a library's error; any line breaks in
    it are folded into spaces here, so the message is always one line.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(" ".join(str(message).split()))
