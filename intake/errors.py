"""Errors the API answers with a 4xx and one clear message (never a 500)."""

from __future__ import annotations


class ApiError(Exception):
    """An error with its HTTP status and a message for the client.

    Attributes
    ----------
    status
        HTTP status code.
    message
        What is wrong, in one sentence.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
