"""Indented JSON documents whose long arrays are written one element per line.

``json.dumps(..., indent=2)`` runs the standard library's pure-Python encoder over every
field (the C encoder only serves ``indent=None``): a 100,000-finding report took seconds.
Writing each element of the long arrays compactly with the C encoder, one per line, keeps
the document readable, makes a snapshot's git diff show one line per changed entry, and is
an order of magnitude faster. The result parses to exactly the same document.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

# Rows per piece of ``chunks``: a megabyte or so, small enough to reuse the allocator's memory.
ROWS_PER_CHUNK = 4096


def _unserializable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _row_encoder() -> Callable[[Any], str]:
    """Compact ``json.dumps(value, ensure_ascii=False)`` for many small values.

    ``json.dumps`` with any non-default argument builds a fresh encoder per call, which
    doubles the cost of 200,000 one-line rows; CPython's C encoder is built once here.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return lambda value: json.dumps(value, ensure_ascii=False)
    encode = make(None, _unserializable, json.encoder.encode_basestring, None, ": ", ", ",
                  False, False, True)
    return lambda value: "".join(encode(value, 0))


# One row: ``json.dumps(value, ensure_ascii=False)``, compact (``", "`` and ``": "``).
encode_row = _row_encoder()
# One string as ``encode_row`` writes it.
encode_string: Callable[[str], str] = json.encoder.encode_basestring


def dumps(document: Mapping[str, Any], rows: Collection[str], indent: int | None = 2,
          encoded: Mapping[str, Sequence[str]] | None = None) -> str:
    """``document`` as JSON; the list values under the keys in ``rows`` one element per line.

    With ``indent=None`` the whole document is one compact line. ``encoded``: rows already
    written by ``encode_row``, by key, written in place of ``document``'s value under that key
    (which only keeps the key's place); only with an ``indent``.
    """
    if indent is None:
        return json.dumps(document, ensure_ascii=False)
    return "".join(chunks(document, rows, indent, encoded))


def chunks(document: Mapping[str, Any], rows: Collection[str], indent: int = 2,
           encoded: Mapping[str, Sequence[str]] | None = None) -> Iterator[str]:
    """The text of ``dumps(document, rows, indent, encoded)`` in pieces of at most
    ``ROWS_PER_CHUNK`` rows: a 100,000-finding report is 75 MB, and writing it piece by piece
    spares holding (and copying, at a fraction of a second a copy) the whole."""
    pad = " " * indent
    row_break = f",\n{pad * 2}"
    if not document:
        yield "{}"
        return
    yield "{\n"
    for number, (name, value) in enumerate(document.items()):
        yield (",\n" if number else "") + f"{pad}{json.dumps(name, ensure_ascii=False)}: "
        texts = encoded.get(name) if encoded is not None else None
        if texts is None and name in rows and isinstance(value, list) and value:
            texts = [encode_row(item) for item in value]
        if not texts:
            yield json.dumps(value, indent=indent, ensure_ascii=False).replace("\n", "\n" + pad)
            continue
        yield f"[\n{pad * 2}"
        for start in range(0, len(texts), ROWS_PER_CHUNK):
            yield (row_break if start else "") + row_break.join(
                texts[start:start + ROWS_PER_CHUNK])
        yield f"\n{pad}]"
    yield "\n}"
