"""CSV rows from a pipe, as they arrive, checked exactly as :mod:`datasets.csv_reading` checks a file's rows."""
from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import BinaryIO

from datasets.csv_reading import (DEFAULT_CHUNK_ROWS, MAX_LINE_CHARS, Block, Lines, PreviousFill, checked_block,
                                  detect_separator, refuse_other_separator, split_line)
from utils.core.errors import DataError


class CsvStream:
    """CSV rows from a binary stream (a pipe) as they arrive, checked as :func:`iter_csv_blocks` checks a file's.

    Each read takes the bytes there are (``read1``), so the complete lines among them make a block at once.

    Args:
        stream: binary, e.g. ``sys.stdin.buffer``.
        separator: the field separator; None: detected from the header.
        hint: said after a header separated otherwise than by ``separator``.
        fill: gives missing cells their column's value before them (else they are refused).
    """

    def __init__(self, stream: BinaryIO, name: str = "<stdin>", read_bytes: int = 1 << 16,
                 separator: str | None = ",", hint: str = ". Write it comma-separated",
                 fill: PreviousFill | None = None, decimal: str = ".") -> None:
        self.stream, self.name, self.read_bytes = stream, name, read_bytes
        self.separator, self.hint, self.fill, self.decimal = separator, hint, fill, decimal
        self.line_no = 0  # lines decoded so far (1 = the header)
        self._pending, self._max_chars = b"", MAX_LINE_CHARS
        self._reads = self._lines()
        self._rest: list[tuple[int, str]] = []

    def read_header(self) -> list[str]:
        """The column names of the first line; DataError for an empty stream or a header that is no header."""
        lines = next(self._reads, [])
        if not lines or not lines[0][1].strip():
            raise DataError(f"{self.name}: {'no input' if not lines else 'line 1 is blank'}; expected a header row "
                            "naming the columns, then one row per time step")
        line, self._rest = lines[0][1].removeprefix("\ufeff"), lines[1:]
        if self.separator is None:
            self.separator = detect_separator(line, Path(self.name))
        header = [name.strip() for name in split_line(line, Path(self.name), 1, self.separator)]
        if len(header) == 1:
            refuse_other_separator(Path(self.name), line, "", self.separator, self.hint)
        if "" in header or len(set(header)) < len(header):
            raise DataError(f"{self.name}: line 1: empty or duplicate column names ({line.strip()[:80]!r})")
        self._max_chars = max(MAX_LINE_CHARS, 16 * sum(len(name) + 1 for name in header))
        return header

    def blocks(self, header: list[str], columns: list[str], text_columns: list[str] = (),
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Block]:
        """The rows after the header (read it first): blocks of the lines that have arrived, at most ``chunk_rows``."""
        blocks = self._blocks(header, columns, text_columns, chunk_rows)
        return self.fill(blocks) if self.fill is not None else blocks

    def _blocks(self, header: list[str], columns: list[str], text_columns: list[str], chunk_rows: int
                ) -> Iterator[Block]:
        position = {name: i for i, name in enumerate(header)}
        idx, text_idx = [position[c] for c in columns], [position[c] for c in text_columns]
        row = 0
        for lines in chain([self._rest], self._reads):
            kept = [(no, line) for no, line in lines if line.strip()]
            for i in range(0, len(kept), chunk_rows):
                for block in self._checked(kept[i: i + chunk_rows], header, row, idx, text_idx):
                    yield block
                    row += len(block.values)

    def _checked(self, part: list[tuple[int, str]], header: list[str], row: int, idx: list[int],
                 text_idx: list[int]) -> Iterator[Block]:
        """The lines as one block; with a bad line among them, the good lines before it one by one, then its error."""
        try:
            block = checked_block(self._block(part, header, row), idx, text_idx)
        except DataError:
            block = None
        if block is not None:
            yield block
            return
        for i, line in enumerate(part):  # the windows the lines before a bad one complete are still scored
            yield checked_block(self._block([line], header, row + i), idx, text_idx)

    def _block(self, part: list[tuple[int, str]], header: list[str], row: int) -> Lines:
        return Lines(Path(self.name), header, row, [no for no, _ in part], [line for _, line in part],
                     self.separator, missing=self.fill is not None, decimal=self.decimal)

    def _lines(self) -> Iterator[list[tuple[int, str]]]:
        """``(line number, line)`` of the complete lines (decoded, ending kept) of each read."""
        held: list[bytes] = []  # reads of a line not yet ended: joined once it ends (linear in a long line)
        held_bytes = 0
        while True:
            chunk = self.stream.read1(self.read_bytes)
            if chunk and b"\n" not in chunk and b"\r" not in chunk:
                held.append(chunk)
                held_bytes += len(chunk)
                if held_bytes + len(self._pending) > 4 * self._max_chars:
                    raise DataError(f"{self.name}: line {self.line_no + 1} is longer than {self._max_chars} "
                                    "characters; expected one row per line")
                continue
            chunk, held, held_bytes = b"".join([*held, chunk]), [], 0
            raw = (self._pending + chunk).splitlines(keepends=True)
            self._pending = b""
            if chunk and raw and not raw[-1].endswith(b"\n"):
                self._pending = raw.pop()  # unfinished (a last \r may be the first half of \r\n)
            if len(self._pending) > 4 * self._max_chars:  # UTF-8: at most 4 bytes per character
                raise DataError(f"{self.name}: line {self.line_no + 1} is longer than {self._max_chars} "
                                "characters; expected one row per line")
            if raw:
                yield [self._decoded(line) for line in raw]
            if not chunk:
                return

    def _decoded(self, raw: bytes) -> tuple[int, str]:
        self.line_no += 1
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{self.name}: line {self.line_no}: bytes that are not UTF-8 text ({err.reason}); "
                            "send UTF-8") from None
        if len(line.rstrip("\r\n")) >= self._max_chars:
            raise DataError(f"{self.name}: line {self.line_no} is longer than {self._max_chars} characters; "
                            "expected one row per line")
        return self.line_no, line
