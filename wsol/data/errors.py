"""The one error type of the dataset readers: every problem found, each naming its file (and
line when it has one), in one message. ``except DataFormatError`` catches the CUB reader's
:class:`~wsol.data.cub.CubFormatError` and the robustness readers'
:class:`~wsol.data.robustness.DatasetFormatError` alike."""

from __future__ import annotations

__all__ = ["DataFormatError", "MAX_PROBLEMS_IN_MESSAGE"]

MAX_PROBLEMS_IN_MESSAGE = 20


class DataFormatError(ValueError):
    """A dataset file or folder does not follow the expected layout.

    ``problems`` lists every problem found; the message shows the first
    ``MAX_PROBLEMS_IN_MESSAGE`` under ``context``. Subclasses set ``single_inline`` (one problem
    is the whole message, no count) and ``more_hint`` (said after "... and N more").
    """

    single_inline = True
    more_hint = ""

    def __init__(self, problems: str | list[str], context: str = "") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        head = f"{context}: " if context else ""
        if len(self.problems) == 1 and self.single_inline:
            super().__init__(f"{head}{self.problems[0]}")
            return
        shown = "\n  ".join(self.problems[:MAX_PROBLEMS_IN_MESSAGE])
        more = len(self.problems) - MAX_PROBLEMS_IN_MESSAGE
        tail = f"\n  ... and {more} more{self.more_hint}" if more > 0 else ""
        super().__init__(f"{head}{len(self.problems)} problem(s):\n  {shown}{tail}")
