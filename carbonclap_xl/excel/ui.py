"""What the ribbon's commands say and ask in Excel: message boxes, the status bar, a text
input and a choice in a list. The commands talk to a ``Ui``; tests hand them a stand-in.

Excel gives no list chooser through xlwings: on Windows the choice is a numbered list in an
``InputBox`` (the user types the number), on macOS the system's « choose from list »
through AppleScript (``osax``, as xlwings' own ``alert`` does there).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Protocol

TITLE = "Carbon'Clap"
_WINDOWS_PROMPT_MAX = 250  # Application.InputBox shows about 255 characters of prompt


class Ui(Protocol):
    def alert(self, text: str, title: str = TITLE) -> None: ...

    def status(self, text: str | None) -> None: ...

    def ask(self, prompt: str, title: str = TITLE, default: str = "") -> str | None: ...

    def choose(self, prompt: str, options: Sequence[str], title: str = TITLE) -> str | None: ...


def numbered_prompt(prompt: str, options: Sequence[str],
                    limit: int = _WINDOWS_PROMPT_MAX) -> tuple[str, int]:
    """``prompt`` and as many numbered options as fit in ``limit`` characters (labels cut
    to 45), and how many were shown."""
    text = prompt
    shown = 0
    for i, option in enumerate(options, start=1):
        label = option if len(option) <= 45 else option[:44] + "…"
        line = f"\n{i}. {label}"
        if len(text) + len(line) > limit:
            break
        text += line
        shown = i
    return text, shown


class XlwingsUi:
    """The ``Ui`` of an open book's Excel (``xlwings.App``)."""

    def __init__(self, book: Any) -> None:
        self.app = book.app

    def alert(self, text: str, title: str = TITLE) -> None:
        self.app.alert(text, title)

    def status(self, text: str | None) -> None:
        self.app.status_bar = text if text else False  # False gives the bar back to Excel

    def ask(self, prompt: str, title: str = TITLE, default: str = "") -> str | None:
        if sys.platform == "darwin":
            answer = self._osax().display_dialog(prompt, default_answer=default,
                                                 with_title=title)
            return str(answer.get(_keyword("text_returned"), "")) or None
        answer = self.app.api.InputBox(prompt, title, default)
        return answer if isinstance(answer, str) and answer.strip() else None

    def choose(self, prompt: str, options: Sequence[str], title: str = TITLE) -> str | None:
        if not options:
            return None
        if sys.platform == "darwin":
            picked = self._osax().choose_from_list(list(options), with_prompt=prompt,
                                                   with_title=title)
            return str(picked[0]) if picked else None
        text, shown = numbered_prompt(prompt, options)
        answer = self.ask(text, title, "1")
        if answer is None or not answer.strip().isdigit():
            return None
        number = int(answer.strip())
        return options[number - 1] if 1 <= number <= shown else None

    def _osax(self) -> Any:
        from appscript import osax  # type: ignore[import-not-found]  (macOS, with xlwings)

        sa = osax.OSAX(pid=self.app.pid)
        sa.activate()
        return sa


def _keyword(name: str) -> Any:
    from appscript import k  # type: ignore[import-not-found]

    return getattr(k, name)


__all__ = ["TITLE", "Ui", "XlwingsUi", "numbered_prompt"]
