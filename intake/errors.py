"""Errors the API answers with a 4xx (or a 503 to retry) and one clear message (never a 500)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# text fields refuse C0 control characters other than tab, line feed and carriage return (and
# DEL): PostgreSQL cannot store NUL, XML cannot carry most of them, and no citizen types them
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# a name (a crew, an agency): such text with at least one visible character
NAME_PATTERN = (
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
)


class ApiError(Exception):
    """An error with its HTTP status and a message for the client.

    Attributes
    ----------
    status
        HTTP status code.
    message
        What is wrong, in one sentence.
    retry_after
        Seconds after which a retry may succeed (sent as ``Retry-After``), or None.
    """

    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


PATTERN_MESSAGES = {
    TEXT_PATTERN: "control characters (such as NUL) are not allowed",
    NAME_PATTERN: "needs a visible character; control characters (such as NUL) are not allowed",
}


def describe_errors(errors: Sequence[Any]) -> tuple[int, str]:
    """One line for a list of pydantic errors: ``field: problem; ...`` (malformed JSON: 400)."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "malformed JSON body"
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        message = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            message = "this field may not be set by a client"
        elif e.get("type") == "string_pattern_mismatch":
            message = PATTERN_MESSAGES.get(str((e.get("ctx") or {}).get("pattern")), message)
        parts.append(f"{where}: {message}")
    return 422, "; ".join(parts)
