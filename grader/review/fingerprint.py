"""Token-level winnowing fingerprints of normalised code, as MOSS computes them.

Schleimer, Wilkerson and Aiken, "Winnowing: local algorithms for document fingerprinting" (SIGMOD
2003): the code is reduced to a token stream that renaming, comments and whitespace cannot change,
every k consecutive tokens are hashed, and in each window of w consecutive hashes the smallest is
kept. Two texts that share a run of at least w + k - 1 tokens are guaranteed to share a fingerprint;
runs shorter than k tokens (noise: `model.fit(x, y)`) never match.

The code cells are joined into one token stream before hashing, so that a run of short cells (three
two-line cells of one exercise) still forms k-grams. Moving whole cells or exercises around loses
only the k-grams that straddle the moved boundaries; everything inside stays.
"""

from __future__ import annotations

import functools
import io
import keyword
import re
import tokenize
import zlib
from typing import NamedTuple

from grader.source.static import strip_magics

NAME, NUMBER, STRING = "N", "0", "S"  # class tokens for every identifier, number and string literal

_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
         tokenize.ENCODING, tokenize.ENDMARKER}
# Python >= 3.12 splits f-strings into parts (3.11 gives one STRING): one S token per f-string.
_FSTRING_START = getattr(tokenize, "FSTRING_START", -1)
_FSTRING_END = getattr(tokenize, "FSTRING_END", -1)
_FSTRING_PARTS = {_FSTRING_START, _FSTRING_END, getattr(tokenize, "FSTRING_MIDDLE", -1)} - {-1}
_FALLBACK = re.compile(r"#[^\n]*|[A-Za-z_]\w*|\d[\w.]*|'[^'\n]*'|\"[^\"\n]*\"|[^\w\s]")


class Token(NamedTuple):  # NamedTuples, not dataclasses: a batch makes hundreds of thousands
    text: str  # the class token (N, 0, S) or the keyword/operator itself
    cell: int  # 0-based index of the cell in the hand-in
    line: int  # 1-based line inside the cell


class Fingerprint(NamedTuple):
    hash: int
    start: int  # index of the k-gram's first token in the hand-in's token stream


def normalise(source: str, cell: int) -> list[Token]:
    """The cell's code as class tokens: keywords and operators kept, identifiers -> N, numbers -> 0,
    strings -> S; comments, docstrings, whitespace and IPython magics dropped."""
    return [Token(text, cell, line) for text, line in _normalised(source)]


@functools.lru_cache(maxsize=4096)
def _normalised(source: str) -> tuple[tuple[str, int], ...]:
    # Cached: the template's cells and copied cells recur across a batch's hand-ins.
    code, _ = strip_magics(source)
    if code is None:
        return ()
    try:
        return tuple(_python_tokens(code))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        # Prose pasted into a code cell, an unclosed bracket: a rough tokenizer keeps the rest usable.
        return tuple(_fallback_tokens(code))


def _python_tokens(code: str) -> list[tuple[str, int]]:
    """(class token, line) for every token of the code."""
    out: list[tuple[str, int]] = []
    line_start = True  # a string that starts a logical line is a docstring or a bare note
    pending_string: tuple[str, int] | None = None
    in_fstring = 0
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type in _FSTRING_PARTS:
            if tok.type == _FSTRING_START:
                if in_fstring == 0:
                    out.append((STRING, tok.start[0]))
                in_fstring += 1
            elif tok.type == _FSTRING_END:
                in_fstring -= 1
            continue
        if in_fstring:
            continue
        if tok.type in _SKIP:
            if tok.type == tokenize.NEWLINE:
                pending_string = None  # the bare string ended its statement: a docstring, dropped
                line_start = True
            continue
        if pending_string is not None:
            out.append(pending_string)
            pending_string = None
        if tok.type == tokenize.STRING:
            token = (STRING, tok.start[0])
            if line_start:
                pending_string = token  # kept only if the statement goes on (`"a" + b`)
            elif not (out and out[-1][0] == STRING):  # "a" "b" implicit concatenation: one string
                out.append(token)
        elif tok.type == tokenize.NAME:
            out.append((tok.string if keyword.iskeyword(tok.string) else NAME, tok.start[0]))
        elif tok.type == tokenize.NUMBER:
            out.append((NUMBER, tok.start[0]))
        elif tok.type != tokenize.ERRORTOKEN or tok.string.strip():
            out.append((tok.string, tok.start[0]))
        line_start = False
    return out


def _fallback_tokens(code: str) -> list[tuple[str, int]]:
    out = []
    for m in _FALLBACK.finditer(code):
        text = m.group()
        if text.startswith("#"):
            continue
        line = code.count("\n", 0, m.start()) + 1
        if text[0] in "'\"":
            text = STRING
        elif text[0].isdigit():
            text = NUMBER
        elif text[0].isalpha() or text[0] == "_":
            text = text if keyword.iskeyword(text) else NAME
        out.append((text, line))
    return out


_MODULUS = (1 << 61) - 1  # a Mersenne prime: k-gram hashes are a polynomial rolling hash modulo it
_BASE = 1_000_003


@functools.lru_cache(maxsize=1024)
def _token_code(text: str) -> int:
    # A stable code per class token (crc32, not the salted hash()): the same fingerprints in every run.
    return zlib.crc32(text.encode("utf-8")) + 1


def kgram_hashes(tokens: list[Token], k: int) -> list[int]:
    """The hash of every run of k tokens, by a rolling polynomial hash (one multiply-add per token)."""
    codes = [_token_code(t.text) for t in tokens]
    if len(codes) < k:
        return []
    top = pow(_BASE, k - 1, _MODULUS)
    h = 0
    for c in codes[:k]:
        h = (h * _BASE + c) % _MODULUS
    hashes = [h]
    for i in range(k, len(codes)):
        h = ((h - codes[i - k] * top) * _BASE + codes[i]) % _MODULUS
        hashes.append(h)
    return hashes


def winnow(hashes: list[int], window: int) -> list[Fingerprint]:
    """The smallest hash of every window of `window` consecutive hashes (the rightmost on ties),
    each position recorded once. A sequence shorter than a window keeps its minimum."""
    if not hashes:
        return []
    if len(hashes) <= window:
        i = min(range(len(hashes)), key=lambda j: (hashes[j], -j))
        return [Fingerprint(hashes[i], i)]
    picked: list[Fingerprint] = []
    last = -1
    for start in range(len(hashes) - window + 1):
        seg = hashes[start:start + window]
        low = min(seg)
        i = start + window - 1 - seg[::-1].index(low)
        if i != last:
            picked.append(Fingerprint(hashes[i], i))
            last = i
    return picked


def fingerprint_stream(tokens: list[Token], k: int, window: int) -> list[Fingerprint]:
    """The winnowed fingerprints of a token stream (positions index `tokens`)."""
    return winnow(kgram_hashes(tokens, k), window)
