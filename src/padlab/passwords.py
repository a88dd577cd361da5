"""Password policy and generated passphrases that are easy to type on a tablet."""

from __future__ import annotations

import secrets

from padlab.errors import PadlabError

MIN_LENGTH = 12
PASSPHRASE_WORDS = 5


def check(password: str) -> None:
    """Refuse short or common passwords; zxcvbn knows the common ones and their variants."""
    if len(password) < MIN_LENGTH:
        raise PadlabError(
            f"password too short ({len(password)} characters)",
            f"use at least {MIN_LENGTH} characters, or let padlab make one with --generate-password",
        )
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:100])
    if result["score"] < 3:
        hint = (result.get("feedback") or {}).get("warning") or "it is easy to guess"
        raise PadlabError(
            f"password too weak: {hint.rstrip('.')}",
            "choose a longer, less common one, or use --generate-password",
        )


def words() -> list[str]:
    """The EFF long list's short words made of letters only: "t-shirt" would break the word count."""
    from xkcdpass import xkcd_password as xp

    return xp.generate_wordlist(
        wordfile=xp.locate_wordfile("eff-long"), min_length=3, max_length=8, valid_chars="[a-z]"
    )


def generate() -> str:
    """Lowercase words joined by dashes: ~63 bits (5 of 6216 words), no shift key needed."""
    pool = words()
    return "-".join(secrets.choice(pool) for _ in range(PASSPHRASE_WORDS))
