"""Predict bodies parsed without building a Python list per pixel.

``json.loads`` turns a 48 MB batch of 64 images into ~3 million Python lists: 423 MiB and 4.3 s on
top of the body (docs/reliability.md). For the common body, an object whose ``instances`` or
``inputs`` is a rectangular array of plain numbers, the array is read by numpy from the bytes
instead: its skeleton (brackets and commas) must equal the skeleton of a rectangular array of the
shape it announces, and its numbers are parsed by ``np.fromstring``. Anything else (named rows,
strings, non-ASCII text) goes through ``json.loads``.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

_BLANK = b" \t\r\n"
_PIECE = 1 << 20
_NUMBER_CHARS = b"0123456789-.eE"
_KEYS = ("instances", "inputs")
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_SKELETON = bytes.maketrans(b"", b"")
_BRACKETS_TO_BLANKS = bytes.maketrans(b"[]", b"  ")


class NotPlain(ValueError):
    """The body is not the plain form; parse it with json.loads."""


def loads(body: bytes) -> Any:
    """The body as json.loads would give it, except that a plain numeric ``instances``/``inputs``
    array comes back as a numpy array (int64 or float64). Raises ValueError for invalid JSON,
    including nesting too deep for json.loads (its RecursionError)."""
    try:
        return _plain(body)
    except NotPlain:
        pass
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _plain(body: bytes) -> dict[str, Any]:
    if not body.isascii():
        raise NotPlain
    text = body.decode("ascii")
    decoder = json.JSONDecoder()
    index = _skip(text, 0)
    if text[index : index + 1] != "{":
        raise NotPlain
    result: dict[str, Any] = {}
    index += 1
    while True:
        index = _skip(text, index)
        if text[index : index + 1] == "}" and not result:
            break
        if text[index : index + 1] != '"':
            raise NotPlain
        key, index = decoder.raw_decode(text, index)
        index = _skip(text, index)
        if text[index : index + 1] != ":":
            raise NotPlain
        index = _skip(text, index + 1)
        if key in _KEYS and text[index : index + 1] == "[":
            end = _array_end(body, index)
            result[key] = _numbers(body, index, end)
        else:
            result[key], end = decoder.raw_decode(text, index)
        index = _skip(text, end)
        if text[index : index + 1] == ",":
            index += 1
        elif text[index : index + 1] == "}":
            break
        else:
            raise NotPlain
    if _skip(text, index + 1) != len(text):
        raise NotPlain
    return result


def _skip(text: str, index: int) -> int:
    """The index of the first non-blank character at or after ``index``."""
    match = _WHITESPACE.match(text, index)
    assert match is not None  # the pattern matches the empty string too
    return match.end()


def _array_end(body: bytes, start: int) -> int:
    """The index after the bracket closing the array that opens at ``start``."""
    raw = np.frombuffer(body, np.uint8, offset=start)
    brackets = np.flatnonzero((raw == ord("[")) | (raw == ord("]")))
    depth = np.cumsum(np.where(raw[brackets] == ord("["), 1, -1), dtype=np.int32)
    closed = np.flatnonzero(depth == 0)
    if not len(closed):
        raise NotPlain
    return start + int(brackets[closed[0]]) + 1


def _pieces(body: bytes, start: int, end: int) -> Iterator[bytes]:
    """body[start:end] in pieces of about _PIECE bytes, cut after a comma so no number is split."""
    while start < end:
        cut = body.find(b",", min(start + _PIECE, end), end)
        cut = end if cut < 0 else cut + 1
        yield body[start:cut]
        start = cut


def _numbers(body: bytes, start: int, end: int) -> np.ndarray:
    """The array in body[start:end], read piece by piece into one preallocated array."""
    skeleton = b"".join(piece.translate(_SKELETON, _BLANK + _NUMBER_CHARS) for piece in _pieces(body, start, end))
    if skeleton.strip(b"[],") or b"[]" in skeleton:
        raise NotPlain  # strings, objects, literals or empty arrays
    shape = _shape(skeleton)
    if _skeleton_of(shape) != skeleton:
        raise NotPlain  # ragged, or stray commas: json.loads gives the precise error
    del skeleton
    floating = any(body.find(c, start, end) >= 0 for c in (b".", b"e", b"E"))
    values = np.empty(int(np.prod(shape)), np.float64 if floating else np.int64)
    filled = 0
    for piece in _pieces(body, start, end):
        if not _json_numbers_only(piece):
            raise NotPlain
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns (not raises) when text is left unread
            try:
                parsed = np.fromstring(piece.translate(_BRACKETS_TO_BLANKS).strip(b" ,\t\r\n"), values.dtype, sep=",")
            except (ValueError, DeprecationWarning):
                raise NotPlain from None
        if filled + parsed.size > values.size:
            raise NotPlain
        values[filled : filled + parsed.size] = parsed
        filled += parsed.size
    if filled != values.size:
        raise NotPlain
    return values.reshape(shape)


def _json_numbers_only(piece: bytes) -> bool:
    """No number np.fromstring would read but JSON forbids: a leading zero ("01"), a dot without a
    digit on both sides ("1.", ".5"); and none it would misread: past 18 digits it saturates at the
    int64 maximum. Vectorised: a Python regex takes ~2 s over 48 MB."""
    raw = np.frombuffer(b" " + piece + b" ", np.uint8)
    digit = (raw >= ord("0")) & (raw <= ord("9"))
    if np.diff(np.flatnonzero(~digit)).max(initial=1) > 19:
        return False
    dots = np.flatnonzero(raw == ord("."))
    if not (digit[dots - 1] & digit[dots + 1]).all():
        return False
    in_number = digit | (raw == ord(".")) | (raw == ord("e")) | (raw == ord("E")) | (raw == ord("-"))
    starts = np.flatnonzero(in_number[1:] & ~in_number[:-1]) + 1
    starts = starts + (raw[starts] == ord("-"))  # the first digit after a minus sign
    starts = starts[starts < len(raw) - 1]
    return not ((raw[starts] == ord("0")) & digit[starts + 1]).any()


def _shape(skeleton: bytes) -> tuple[int, ...]:
    """The shape the first array at each depth announces, from the innermost out: for "[[,,],[,,]]"
    (2, 3). Each step walks only the first array's children, so this costs the sum of the sizes."""
    rank = len(skeleton) - len(skeleton.lstrip(b"["))
    shape: list[int] = []
    child_length = 0  # the skeleton of a number is empty
    for depth in reversed(range(rank)):
        position, count = depth + 1, 0
        while True:
            position += child_length
            count += 1
            if skeleton[position : position + 1] == b"]":
                break
            if skeleton[position : position + 1] != b",":
                raise NotPlain
            position += 1
        shape.insert(0, count)
        child_length = position - depth + 1
    return tuple(shape)


def _skeleton_of(shape: tuple[int, ...]) -> bytes:
    part = b""
    for size in reversed(shape):
        part = b"[" + b",".join([part] * size) + b"]"
    return part
