"""The first pass over a CSV file: limits checked on raw bytes before any parser runs.

A CSV parser handed a 100 MB header or a 31 MB line fails in its own way (an internal
error, or worse a row dropped without a word), so :func:`scan_lines` reads the file once,
in large chunks with vectorised newline search (linear in the file, whatever its shape),
and refuses the first line over ``max_line_bytes`` by its number. The same pass counts the
lines, notes the blank lines (the parser skips them: the caller reports them) and feeds a
progress bar, so a big file shows percent, rows per second and time left from the start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collabzone.errors import InvalidInputError

CHUNK_BYTES = 8 << 20
BLANK_LINES_NAMED = 5

Progress = Callable[[str, float, int], None]
"""Called as ``progress(step, fraction_of_step_done, rows_so_far)`` while a file is ingested;
the steps are ``"scanning"`` (this module's byte pass) then ``"parsing"`` (the CSV reader)."""


@dataclass
class LineScan:
    """What the byte-level pass learnt: physical lines, blank ones, whether quotes occur."""

    lines: int = 0
    blank: int = 0
    blank_lines: list[int] = field(default_factory=list)
    quotes: bool = False

    def blank_notice(self, file_name: str) -> str | None:
        """A sentence naming the blank lines that were skipped (None when there were none)."""
        if not self.blank:
            return None
        named = ", ".join(map(str, self.blank_lines))
        more = ", ..." if self.blank > len(self.blank_lines) else ""
        plural = "s" if self.blank > 1 else ""
        return f"{file_name}: skipped {self.blank} blank line{plural} (line{plural} {named}{more})"


def scan_lines(path: Path, max_line_bytes: int, progress: Progress | None = None) -> LineScan:
    """Check every physical line of ``path`` against ``max_line_bytes`` (line ending not
    counted) and count lines and blank lines; raise naming the first line that is too long.

    Example:
        >>> scan_lines(Path("customers.csv"), 1 << 20).lines  # doctest: +SKIP
        401
    """
    scan = LineScan()
    line = 1  # number of the line the next byte belongs to
    open_length = 0  # bytes of that line seen in earlier chunks
    last_byte = -1  # the byte before the current chunk (a CR before a chunk's first LF)
    done = 0
    size = max(path.stat().st_size, 1)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            data = np.frombuffer(chunk, dtype=np.uint8)
            scan.quotes = scan.quotes or bool(np.any(data == 0x22))
            ends = np.flatnonzero(data == 0x0A)
            if ends.size:
                starts = np.empty_like(ends)
                starts[0] = 0
                starts[1:] = ends[:-1] + 1
                lengths = ends - starts
                lengths[0] += open_length
                before = np.where(ends > 0, data[np.maximum(ends - 1, 0)], last_byte)
                lengths -= before == 0x0D  # a CRLF line ending is not content
                _refuse_long(path, lengths, line, max_line_bytes)
                _note_blank(scan, np.flatnonzero(lengths == 0), line)
                line += int(ends.size)
                open_length = len(chunk) - int(ends[-1]) - 1
            else:
                open_length += len(chunk)
            if open_length > max_line_bytes + 1:  # +1: a CR that may end the line
                _refuse_long(path, np.array([open_length]), line, max_line_bytes)
            last_byte = int(data[-1])
            done += len(chunk)
            if progress is not None:
                progress("scanning", done / size, line - 1)
    if open_length:  # a last line without a line ending
        _refuse_long(path, np.array([open_length - (last_byte == 0x0D)]), line, max_line_bytes)
        scan.lines = line
    else:
        scan.lines = line - 1
    return scan


def _refuse_long(path: Path, lengths: np.ndarray, first_line: int, limit: int) -> None:
    over = np.flatnonzero(lengths > limit)
    if over.size:
        index = int(over[0])
        raise InvalidInputError(
            f"{path.name}, line {first_line + index}: line is too long (over the limit of {limit} "
            "bytes: limits.max_line_bytes in the spec); nothing was stored"
        )


def _note_blank(scan: LineScan, blank: np.ndarray, first_line: int) -> None:
    if blank.size:
        scan.blank += int(blank.size)
        room = BLANK_LINES_NAMED - len(scan.blank_lines)
        scan.blank_lines.extend(first_line + int(i) for i in blank[:room])
