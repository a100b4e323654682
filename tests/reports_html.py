"""Helpers for tests of the HTML reports: what a page would fetch from elsewhere."""

from __future__ import annotations

from html.parser import HTMLParser

# tag -> the attribute that makes a browser fetch something
FETCHING = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src"}


class _Sources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = FETCHING.get(tag)
        for name, value in attrs:
            if name == wanted and value and not value.startswith("data:"):
                self.found.append(f"<{tag} {name}={value[:80]}>")


def external_sources(page: str) -> list[str]:
    """Every script, stylesheet, image or frame the page loads from a URL or file (not inline)."""
    parser = _Sources()
    parser.feed(page)
    return parser.found
