"""What a new password must be: long enough, not too long, and not a common or breached one.

Every place a password is set (sign-up, joining by invitation, reset, change) checks it here:
forms with ``AcceptablePassword``, services with ``hash_new_password`` (OWASP ASVS 6.2.4,
6.2.12). The list of common passwords (data/README.md says where it comes from) is read once
per process, on the first check.
"""

from __future__ import annotations

import bisect
import functools
import lzma
import re
from array import array
from pathlib import Path

from wtforms.validators import ValidationError

from app.core.security import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, hash_password

COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt.xz"

TOO_SHORT = f"Use at least {PASSWORD_MIN_LENGTH} characters (a passphrase is best)."
TOO_LONG = f"Use at most {PASSWORD_MAX_LENGTH} characters."
TOO_COMMON = (
    "This password is too common: it is on lists of passwords that attackers try first. "
    "Choose another (a few unrelated words make a strong passphrase)."
)


class UnacceptablePassword(ValueError):
    """A new password the rules refuse; the message is shown as it is."""


@functools.cache
def _common_passwords() -> tuple[bytes, array]:
    """The list as one block of sorted lines, and where each line starts (binary-searchable)."""
    blob = lzma.decompress(COMMON_PASSWORDS_FILE.read_bytes()).strip(b"\n") + b"\n"
    starts = array("I", [0])
    starts.extend(match.end() for match in re.finditer(b"\n", blob))
    return blob, starts


def common_password_count() -> int:
    return len(_common_passwords()[1]) - 1


def is_common(password: str) -> bool:
    """True when the password (compared without regard to case) is on the common-password list."""
    blob, starts = _common_passwords()
    count = len(starts) - 1

    def entry(index: int) -> bytes:
        return blob[starts[index] : starts[index + 1] - 1]

    for candidate in {password.lower(), password.strip().lower()}:
        needle = candidate.encode("utf-8", "surrogatepass")
        index = bisect.bisect_left(range(count), needle, key=entry)
        if index < count and entry(index) == needle:
            return True
    return False


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be a new password, or None."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return TOO_SHORT
    if len(password) > PASSWORD_MAX_LENGTH:
        return TOO_LONG
    if is_common(password):
        return TOO_COMMON
    return None


def hash_new_password(password: str) -> str:
    """The hash to store for a new password; raises UnacceptablePassword when it is refused."""
    if problem := password_problem(password):
        raise UnacceptablePassword(problem)
    return hash_password(password)


class AcceptablePassword:
    """WTForms validator for every new-password field, after its ``Length`` (which says "too
    short" or "too long" itself): refuses common passwords."""

    def __call__(self, form, field) -> None:
        if field.data and password_problem(field.data) == TOO_COMMON:
            raise ValidationError(TOO_COMMON)
