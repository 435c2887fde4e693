"""Column kernels over Arrow string arrays: the fast path of cell cleaning, exactly what Python's str methods give.

Arrow's kernels run in C++ over a whole column, but they are not Python: RE2's `\\s` is ASCII only, utf8proc knows a
newer Unicode than `unicodedata` and maps case one character to one. So each kernel here spells out the characters
Python means (`WHITESPACE`), and hands the few cells where Arrow and Python could disagree (characters outside
`ARROW_SAFE`, or non-ASCII case mapping) to Python itself. Missing cells are nulls throughout.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TEXT: Final = pa.large_string()  # 64-bit offsets: a column of a million long cells can pass 2 GiB
SAMPLE_CELLS: Final = 4096  # cells looked at to guess whether a column repeats itself
MOSTLY_DISTINCT: Final = 0.9  # a sample with more than this share of its cells distinct is read cell by cell


def char_class(codes: Iterable[int | tuple[int, int]], *, negate: bool = False) -> str:
    """An RE2 character class of code points (single, or inclusive ranges), written with \\x{…} escapes."""
    parts = [
        f"\\x{{{c[0]:X}}}-\\x{{{c[1]:X}}}" if isinstance(c, tuple) else f"\\x{{{c:X}}}"
        for c in codes  # escapes: controls and NUL written literally would not survive as a pattern
    ]
    return f"[{'^' if negate else ''}{''.join(parts)}]"


# Exactly the characters of Python's str.isspace() and of `re`'s \s on str: what str.strip() trims and \s+ matches
# (a test compares it with every code point).
WHITESPACE_CODES: Final[tuple[int, ...]] = (
    *range(0x09, 0x0E),
    *range(0x1C, 0x21),
    0x85,
    0xA0,
    0x1680,
    *range(0x2000, 0x200B),
    0x2028,
    0x2029,
    0x202F,
    0x205F,
    0x3000,
)
WHITESPACE: Final = "".join(map(chr, WHITESPACE_CODES))
WHITESPACE_CLASS: Final = char_class(WHITESPACE_CODES)
WHITESPACE_RUN: Final = WHITESPACE_CLASS + "+"

# Blocks every character of which Python's unicodedata (Unicode 14, Python 3.11) and Arrow's utf8proc normalise
# alike (a test checks each one): ASCII and Latin-1, general punctuation, CJK symbols, kana, CJK ideographs and the
# half/full-width forms — what a Japanese sheet is written in. The few holes are code points unassigned in Unicode 14
# that a later Unicode may assign; a cell with any other character is normalised by Python.
ARROW_SAFE_RANGES: Final[tuple[tuple[int, int], ...]] = (
    (0x0000, 0x00FF),
    (0x2000, 0x2064),
    (0x2066, 0x206F),
    (0x3000, 0x303F),
    (0x3041, 0x3096),
    (0x3099, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xFF01, 0xFFBE),
    (0xFFC2, 0xFFC7),
    (0xFFCA, 0xFFCF),
    (0xFFD2, 0xFFD7),
    (0xFFDA, 0xFFDC),
    (0xFFE0, 0xFFE6),
    (0xFFE8, 0xFFEE),
)
_ONLY_SAFE: Final = "^" + char_class(ARROW_SAFE_RANGES) + "*$"

# Lone surrogates cannot be UTF-8 (Arrow strings are UTF-8); cleaning removes them anyway, so they go first.
_SURROGATES: Final[dict[int, None]] = dict.fromkeys(range(0xD800, 0xE000))


def to_arrow(values: Sequence[object] | np.ndarray[Any, Any] | pa.Array | pa.ChunkedArray) -> pa.Array:
    """A large_string array of `values` (str, or None/NaN for a missing cell)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if values.type == TEXT else values.cast(TEXT)
    try:
        return pa.array(values, type=TEXT, from_pandas=True)
    except (UnicodeEncodeError, pa.ArrowTypeError, pa.ArrowInvalid):
        # Anything but text is no cell text at all (as pandas' .str methods treat it).
        cleaned = [v.translate(_SURROGATES) if isinstance(v, str) else None for v in values]
        return pa.array(cleaned, type=TEXT, from_pandas=True)


def to_objects(array: pa.Array) -> np.ndarray[Any, Any]:
    """An object ndarray of Python str, None where null."""
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)


def mask(array: pa.Array) -> pa.Array:
    """A boolean array with nulls as False (a filter or a mask)."""
    return pc.fill_null(array, False)


def patch(array: pa.Array, where: pa.Array, fix: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """`array` with the cells where `where` holds replaced by `fix` of those cells (in order); the rest untouched."""
    where = mask(where)
    if not pc.any(where).as_py():
        return array
    fixed = fix(array.filter(where))
    return pc.replace_with_mask(array, where, fixed.cast(array.type))


def python_map(function: Callable[[str], str]) -> Callable[[pa.Array], pa.Array]:
    """An Arrow → Arrow map through a Python str function (for the few cells Arrow cannot do as Python does)."""
    return lambda part: pa.array([None if s is None else function(s) for s in part.to_pylist()], type=TEXT)


def nfkc(array: pa.Array) -> pa.Array:
    """unicodedata.normalize('NFKC', ·) of every cell; ASCII is already NFKC, so only the other cells are touched."""

    def normalise(part: pa.Array) -> pa.Array:
        unsafe = pc.invert(pc.match_substring_regex(part, _ONLY_SAFE))
        return patch(
            pc.utf8_normalize(part, form="NFKC"), unsafe, python_map(lambda s: unicodedata.normalize("NFKC", s))
        )

    return patch(array, pc.invert(pc.string_is_ascii(array)), normalise)


def upper(array: pa.Array) -> pa.Array:
    """str.upper() of every cell (Python maps ß to SS and ﬁ to FI; Arrow does not, so non-ASCII cells go to Python)."""
    return patch(pc.ascii_upper(array), pc.invert(pc.string_is_ascii(array)), python_map(str.upper))


def lower(array: pa.Array) -> pa.Array:
    """str.lower() of every cell, as `upper`."""
    return patch(pc.ascii_lower(array), pc.invert(pc.string_is_ascii(array)), python_map(str.lower))


def replace(array: pa.Array, pattern: str, replacement: str) -> pa.Array:
    """Every match of the RE2 `pattern` replaced, touching only the cells that contain one."""
    return patch(
        array,
        pc.match_substring_regex(array, pattern),
        lambda part: pc.replace_substring_regex(part, pattern, replacement),
    )


def strip(array: pa.Array) -> pa.Array:
    """str.strip() of every cell."""
    return pc.utf8_trim(array, WHITESPACE)


def null_if_empty(array: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(pc.binary_length(array), 0), pa.scalar(None, TEXT), array)


def matches(array: pa.Array, pattern: str) -> pa.Array:
    """Boolean per cell: the RE2 `pattern` matches somewhere in the cell (null cells are False)."""
    return mask(pc.match_substring_regex(array, pattern))


def fullmatch(array: pa.Array, pattern: str) -> pa.Array:
    """Boolean per cell: the whole cell matches the RE2 `pattern` (null cells are False)."""
    return mask(pc.match_substring_regex(array, f"^(?:{pattern})$"))


def distinct(array: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray[Any, Any]]:
    """The distinct cells of `array` and, per cell, its position among them (-1 for a missing cell).

    Sheets repeat themselves (statuses, property types, dates, names), so most columns have far fewer distinct cells
    than rows: work done per distinct cell and spread back (`spread`) is work saved, and equal results share one
    Python object, which keeps a million-row frame small.
    """
    encoded = pc.dictionary_encode(array)
    if isinstance(encoded, pa.ChunkedArray):  # every chunk holds the whole dictionary
        if encoded.num_chunks == 0:
            return pa.array([], type=array.type), np.empty(0, dtype=np.int32)
        dictionary = encoded.chunk(0).dictionary
        indices = pa.chunked_array([c.indices for c in encoded.chunks], type=encoded.type.index_type)
        return dictionary, pc.fill_null(indices, -1).to_numpy()
    return encoded.dictionary, pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)


def distinct_or_cells(array: pa.Array | pa.ChunkedArray) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray[Any, Any]]:
    """`distinct`, unless the column's first `SAMPLE_CELLS` cells are mostly distinct (seller numbers, phone numbers,
    addresses, times): then the cells themselves, each its own position, since encoding would cost more than it
    saves. Either way the caller works on the first array and spreads the results back by the positions."""
    sample = array.slice(0, SAMPLE_CELLS)
    if len(sample) < SAMPLE_CELLS or pc.count_distinct(sample).as_py() <= MOSTLY_DISTINCT * len(sample):
        return distinct(array)
    positions = np.arange(len(array))
    if array.null_count:
        positions[~array.is_valid().to_numpy(zero_copy_only=False)] = -1
    return array, positions


def combined(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array of `array` (a copy only when it is in several chunks)."""
    if not isinstance(array, pa.ChunkedArray):
        return array
    return array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()


def spread(
    per_distinct: np.ndarray[Any, Any], indices: np.ndarray[Any, Any], missing: object = None
) -> np.ndarray[Any, Any]:
    """Per-distinct results back onto the rows (`indices` from `distinct`); `missing` where the cell was missing."""
    if not len(indices) or indices.min() >= 0:  # no missing cell: no copy with room for `missing`
        return per_distinct[indices]
    extended = np.empty(len(per_distinct) + 1, dtype=per_distinct.dtype)
    extended[:-1] = per_distinct
    extended[-1] = missing
    return extended[indices]
