"""Errors a user can cause: each carries a message naming the problem and a hint naming the fix."""

from __future__ import annotations

import re


class ArtkitError(Exception):
    """A user-facing error. The CLI prints ``message`` and ``hint`` without a traceback."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ImageLoadError(ArtkitError):
    """An image file is missing, truncated or not an image."""

    def __init__(self, message: str, hint: str | None = None, path: str | None = None) -> None:
        super().__init__(message, hint)
        self.path = path


def user_message(exc: BaseException) -> str | None:
    """The user-facing text of ``exc`` if it is (or wraps) an ArtkitError, else None.

    DataLoader workers re-raise an exception as ``type(exc)(formatted_traceback)``; the
    original message is then the last line of that text, which is what we show.
    """
    if not isinstance(exc, ArtkitError):
        return None
    if "Original Traceback" in exc.message:
        return unwrap_worker_traceback(exc.message)
    return str(exc)


_RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Loss)\w*: ")


def unwrap_worker_traceback(text: str) -> str:
    """The final exception's message (with its hint line) from a formatted traceback."""
    lines = text.rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if _RAISED.match(lines[i]):
            return "\n".join([lines[i].split(": ", 1)[1], *lines[i + 1 :]])
    return lines[-1] if lines else text
