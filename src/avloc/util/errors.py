"""The one exception type users see: a one-line message naming the file, video or setting."""


class AvlocError(Exception):
    """A problem with the user's input. The CLI prints it as one line and exits non-zero.

    Messages often quote text from a broken file or a library's error; any line breaks in
    it are folded into spaces here, so the message is always one line.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(" ".join(str(message).split()))


def first_line(err: BaseException, limit: int = 200, skip: int = 0) -> str:
    """What a one-line error quotes of another library's exception: line `skip` of its
    message (0, the first; the last when there are fewer), stripped, at most `limit`
    characters; the exception's type name when the message is empty."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[min(skip, len(lines) - 1)][:limit]


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 video', '2 videos' (`many` for irregular plurals)."""
    return f"{n} {one if n == 1 else many or one + 's'}"
