from __future__ import annotations

import pytest

from padlab import passwords
from padlab.errors import PadlabError


@pytest.mark.parametrize(
    "weak", ["short", "elevenchars", "password1234", "qwertyuiop123", "aaaaaaaaaaaaaaaa"]
)
def test_weak_passwords_are_refused(weak):
    with pytest.raises(PadlabError):
        passwords.check(weak)


def test_generated_passphrases_are_strong_lowercase_and_distinct():
    seen = {passwords.generate() for _ in range(20)}
    assert len(seen) == 20
    for phrase in seen:
        passwords.check(phrase)
        assert phrase == phrase.lower()
        assert len(phrase.split("-")) == passwords.PASSPHRASE_WORDS


def test_passphrase_words_are_letters_only_so_the_dashes_only_separate_them():
    pool = passwords.words()
    assert len(pool) > 6000  # 5 words of the list keep ~63 bits
    assert all(word.isalpha() and word.islower() for word in pool)
