"""Columns at the edges: ast gives UTF-8 byte offsets; people and SARIF count characters."""

from __future__ import annotations


def char_column(line: str, byte_column: int) -> int:
    """The 0-based character column of a 0-based UTF-8 byte offset into ``line``."""
    if line.isascii():
        return min(byte_column, len(line)) if byte_column <= len(line) else byte_column
    encoded = line.encode("utf-8")
    return len(encoded[:byte_column].decode("utf-8", errors="ignore"))
