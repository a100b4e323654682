"""Errors the API answers with a 4xx (or a 503 to retry) and one clear message (never a 500)."""

from __future__ import annotations


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
