"""Byte templates: a document made once for sentinel values, cut around them, and filled in.

An answer the VTN sends over and over (an oadrResponse to a poll with nothing new) differs from
VEN to VEN only in its venID, and, when signed, in its ReplayProtect and what follows from it.
Built once through the ordinary encoder (and signer), with a sentinel where each changing value
goes, the document is cut into byte pieces around the sentinels (`cut`) and later joined around
real values (`Cut.join`). Only values every serializer writes as is may be filled in
(`verbatim`: no character C14N or lxml would escape), so the pieces stay exactly what the encoder
made of the sentinel. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Letters, digits and ._:+/=- (base64 included): written as is by C14N and by lxml.
_VERBATIM: Final = re.compile(r"[A-Za-z0-9._:+/=-]{1,1024}\Z")


def verbatim(text: str) -> bool:
    """Whether `text` can fill a slot: 1 to 1,024 characters no serializer escapes."""
    return _VERBATIM.match(text) is not None


@dataclass(frozen=True, slots=True)
class Cut:
    """Byte pieces, and the name of the slot between each two."""

    pieces: tuple[bytes, ...]
    slots: tuple[str, ...]

    def join(self, values: dict[str, bytes]) -> bytes:
        out = [self.pieces[0]]
        for name, piece in zip(self.slots, self.pieces[1:], strict=True):
            out.append(values[name])
            out.append(piece)
        return b"".join(out)


def cut(data: bytes, sentinels: dict[str, str], expect: tuple[str, ...], free: str = "") -> Cut:
    """`data` cut around every sentinel (slot name -> its sentinel text). The slots in `expect`
    must each appear once and in that order; slot `free` may appear anywhere, any number of
    times. ValueError otherwise, or for a sentinel that is not `verbatim`."""
    if not all(verbatim(text) for text in sentinels.values()):
        raise ValueError("a template's sentinel is not plain text")
    by_text = {text.encode(): name for name, text in sentinels.items()}
    pattern = re.compile(b"|".join(re.escape(text) for text in by_text))
    pieces = tuple(pattern.split(data))
    slots = tuple(by_text[match.group(0)] for match in pattern.finditer(data))
    if tuple(name for name in slots if name != free) != expect:
        raise ValueError(f"template slots {slots} where {expect} were expected")
    return Cut(pieces, slots)
