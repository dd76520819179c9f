"""Writes an incremental update (new and replaced objects + cross-reference section).

The original bytes are never touched (except, for *unsigned* documents older than PDF 1.7, the
three-character version in the header, which keeps every byte offset unchanged); everything else
is appended.  The cross-reference section matches the original's last section: a classic table
after a classic table, an (uncompressed) xref stream after an xref stream, ``/Prev`` pointing at
the original's last ``startxref``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from issuer.signing.syntax import literal


@dataclass(slots=True)
class _Entry:
    number: int
    generation: int
    body: bytes


@dataclass(slots=True)
class IncrementalUpdate:
    base_length: int
    next_number: int
    prev_startxref: int
    xref_stream: bool
    entries: list[_Entry] = field(default_factory=list)

    def allocate(self) -> int:
        number = self.next_number
        self.next_number += 1
        return number

    def put(self, number: int, generation: int, body: bytes) -> None:
        self.entries.append(_Entry(number, generation, body))

    def render(self, trailer: dict[bytes, bytes]) -> bytes:
        """The update bytes, to be appended at offset ``base_length`` of the original."""
        chunks: list[bytes] = []
        offsets: dict[int, tuple[int, int]] = {}
        position = self.base_length
        for entry in self.entries:
            chunk = b"%d %d obj\n%s\nendobj\n" % (entry.number, entry.generation, entry.body)
            offsets[entry.number] = (position, entry.generation)
            chunks.append(chunk)
            position += len(chunk)
        xref_offset = position
        if self.xref_stream:
            chunks.append(self._xref_stream(offsets, xref_offset, trailer))
        else:
            chunks.append(self._xref_table(offsets, trailer))
        chunks.append(b"startxref\n%d\n%%%%EOF\n" % xref_offset)
        return b"".join(chunks)

    def _subsections(self, numbers: list[int]) -> list[list[int]]:
        groups: list[list[int]] = []
        for number in sorted(numbers):
            if groups and groups[-1][-1] + 1 == number:
                groups[-1].append(number)
            else:
                groups.append([number])
        return groups

    def _trailer_entries(self, trailer: dict[bytes, bytes], size: int) -> bytes:
        items = {b"/Size": b"%d" % size, **trailer, b"/Prev": b"%d" % self.prev_startxref}
        return b" ".join(key + b" " + value for key, value in items.items())

    def _xref_table(self, offsets: dict[int, tuple[int, int]], trailer: dict[bytes, bytes]) -> bytes:
        lines = [b"xref\n"]
        for group in self._subsections(list(offsets)):
            lines.append(b"%d %d\n" % (group[0], len(group)))
            lines.extend(b"%010d %05d n\r\n" % offsets[number] for number in group)
        lines.append(b"trailer\n<< " + self._trailer_entries(trailer, self.next_number) + b" >>\n")
        return b"".join(lines)

    def _xref_stream(self, offsets: dict[int, tuple[int, int]], xref_offset: int, trailer: dict[bytes, bytes]) -> bytes:
        number = self.allocate()
        offsets = {**offsets, number: (xref_offset, 0)}
        width = max(4, (xref_offset.bit_length() + 7) // 8)
        rows: list[bytes] = []
        index: list[bytes] = []
        for group in self._subsections(list(offsets)):
            index.append(b"%d %d" % (group[0], len(group)))
            for entry in group:
                offset, generation = offsets[entry]
                rows.append(b"\x01" + offset.to_bytes(width, "big") + generation.to_bytes(2, "big"))
        data = b"".join(rows)
        header = (
            b"<< /Type /XRef "
            + self._trailer_entries(trailer, self.next_number)
            + b" /Index ["
            + b" ".join(index)
            + b"] /W [1 %d 2] /Length %d >>" % (width, len(data))
        )
        return b"%d 0 obj\n%s\nstream\n%s\nendstream\nendobj\n" % (number, header, data)


def hex_id(value: bytes) -> bytes:
    return b"<" + value.hex().encode("ascii") + b">"


def plain_string(data: bytes) -> bytes:
    return literal(data)
