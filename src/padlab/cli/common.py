"""Helpers shared by the command modules: profile lookup, password input, card output."""

from __future__ import annotations

import sys
from typing import Any

from padlab.errors import PadlabError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def load_profile(name: str | None) -> Any:
    from padlab import profiles

    return profiles.load(name)


def read_password(
    from_stdin: bool, generate: bool, confirm: bool = True, what: str = "Jupyter"
) -> tuple[str, bool]:
    """(password, generated): from stdin, generated, or asked twice on a terminal."""
    from padlab import passwords

    if from_stdin and generate:
        raise PadlabError("--password-stdin and --generate-password exclude each other", "use one of them")
    if generate:
        return passwords.generate(), True
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"New {what} password (12+ characters): ")
        passwords.check(password)
        if confirm and getpass.getpass("Repeat it: ") != password:
            raise PadlabError(
                "the two passwords differ", "run the command again and type the same password twice"
            )
    else:
        raise PadlabError(
            "a password is needed and there is no terminal to ask on",
            "pass --password-stdin (and pipe it in) or --generate-password",
        )
    passwords.check(password)
    return password, False


def show_card(data: dict, as_json: bool, qr: bool) -> None:
    from padlab import card, ui

    if as_json:
        ui.print_json(data)
    elif ui.is_tty():
        ui.console().print(card.render_rich(data, qr=True))
    else:
        print(card.render_plain(data, qr=qr))
