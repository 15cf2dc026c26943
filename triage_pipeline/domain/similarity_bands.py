"""MinHash bands of a text's words: how a large example bank finds a ticket's candidates without reading it all.

Two texts share a band when the same `ROWS_PER_BAND` minimum word hashes fall in it, which happens with
probability `J ** ROWS_PER_BAND` per band for word-set Jaccard similarity `J`. With 20 bands of 4, a text
about the same thing as the ticket (J = 0.5) shares at least one band 73% of the time, an unrelated one
(J = 0.1) 0.2% of the time: a GIN index on the bands then narrows 100,000 examples to a few hundred
candidates, ranked by trigram similarity afterwards (`SqlExampleRepository.nearest`).

The bands are stored with each example (migration 0011 computed them for the rows it found): changing
`BANDS`, `ROWS_PER_BAND` or the word rule needs a migration that recomputes them.
"""

import hashlib
import re
import struct
import zlib

BANDS = 20
ROWS_PER_BAND = 4
_HASHES = BANDS * ROWS_PER_BAND
_UNPACK = struct.Struct(f"<{_HASHES}I").unpack
_WORD = re.compile(r"[^\W\d_]{2,}")
"""Words of two letters or more; digits split words and are dropped, since order numbers, amounts and dates
differ between two tickets about the same thing."""


def similarity_bands(text: str) -> list[int]:
    """`BANDS` signed 32-bit band values of `text` (already normalised), or none when it has no words."""
    words = set(_WORD.findall(text))
    if not words:
        return []
    # shake_128 gives each word `_HASHES` independent 32-bit hashes in one C call, stable across processes.
    hashes = [_UNPACK(hashlib.shake_128(word.encode()).digest(4 * _HASHES)) for word in words]
    minima = [min(column) for column in zip(*hashes, strict=True)]
    bands = []
    for band in range(BANDS):
        rows = minima[band * ROWS_PER_BAND : (band + 1) * ROWS_PER_BAND]
        value = zlib.crc32(struct.pack(f"<B{ROWS_PER_BAND}I", band, *rows))
        bands.append(value - (1 << 32) if value >= 1 << 31 else value)
    return bands
