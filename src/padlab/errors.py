"""One kind of error for everything a user can fix: a message and the fix, one line."""

from __future__ import annotations


class PadlabError(Exception):
    """Shown as a single line, never as a traceback; exit_code lets scripts tell kinds apart."""

    def __init__(self, message: str, fix: str = "", exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message}; {self.fix}" if self.fix else self.message
