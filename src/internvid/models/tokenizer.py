"""ViCLIP's text tokenizer: OpenAI CLIP's byte-level BPE, context 32, the official truncation."""

from __future__ import annotations

import functools
import gzip
import html
import importlib.resources
from collections.abc import Iterable, Sequence

import ftfy
import regex
import torch

VOCAB_FILE = (
    "bpe_simple_vocab_16e6.txt.gz"  # shipped next to this module (see LICENSE-clip-bpe.txt)
)
SOT_TOKEN = "<|startoftext|>"
EOT_TOKEN = "<|endoftext|>"
SOT_ID = 49406  # id of <|startoftext|>
EOT_ID = 49407  # id of <|endoftext|>; also the largest id, so argmax(ids) finds it
VOCAB_SIZE = 49408  # 256 bytes + 256 end-of-word bytes + 48,894 merges + 2 specials
CONTEXT_LENGTH = 32  # ViCLIP's text context (OpenAI CLIP uses 77)
NUM_MERGES = VOCAB_SIZE - 2 * 256 - 2  # merges read from the vocabulary file (after its header)

# CLIP's pre-tokenisation: the specials, English contractions, letter runs, single digits, and
# runs of anything else that is not whitespace.
_WORD_PATTERN = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d"
    r"|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)
_WHITESPACE = regex.compile(r"\s+")
_CACHE_LIMIT = 200_000  # words kept in the BPE cache before it is cleared


def _byte_symbols() -> list[tuple[int, str]]:
    """(byte, printable symbol) pairs, in vocabulary order.

    Bytes that are printable Latin-1 characters stand for themselves and come first; the 68 others
    (controls, space, soft hyphen...) get the code points 256, 257, ... in byte order, after them.
    """
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    kept = set(printable)
    others = [b for b in range(256) if b not in kept]
    return [(b, chr(b)) for b in printable] + [(b, chr(256 + i)) for i, b in enumerate(others)]


def _clean(text: str) -> str:
    """ftfy repair, HTML entities decoded twice, whitespace runs collapsed, lower case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


def read_merges() -> list[tuple[str, str]]:
    """The 48,894 BPE merges of the shipped vocabulary file, in rank order."""
    raw = importlib.resources.files("internvid.models").joinpath(VOCAB_FILE).read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 1 + NUM_MERGES]]  # line 0: a header
    if len(merges) != NUM_MERGES or any(len(m) != 2 for m in merges):
        raise ValueError(f"{VOCAB_FILE}: expected {NUM_MERGES} merge lines of two symbols")
    return merges  # type: ignore[return-value]


class ViCLIPTokenizer:
    """CLIP BPE text -> ids; `tokenize` pads/truncates to the context exactly like ViCLIP's code."""

    def __init__(self, context_length: int = CONTEXT_LENGTH) -> None:
        if context_length < 2:
            raise ValueError(f"context_length must be >= 2 (SOT and EOT), got {context_length}")
        self.context_length = context_length
        symbols = _byte_symbols()
        self.byte_to_symbol: dict[int, str] = dict(symbols)
        self.symbol_to_byte: dict[str, int] = {s: b for b, s in symbols}
        merges = read_merges()
        vocab = [s for _, s in symbols]
        vocab += [s + "</w>" for s in vocab]
        vocab += [a + b for a, b in merges]
        vocab += [SOT_TOKEN, EOT_TOKEN]
        self.encoder: dict[str, int] = {tok: i for i, tok in enumerate(vocab)}
        self.decoder: dict[int, str] = dict(enumerate(vocab))
        self.merge_ranks: dict[tuple[str, str], int] = {m: r for r, m in enumerate(merges)}
        self._cache: dict[str, tuple[str, ...]] = {}
        if len(self.encoder) != VOCAB_SIZE or self.encoder[EOT_TOKEN] != EOT_ID:
            raise ValueError(
                f"{VOCAB_FILE}: vocabulary of {len(self.encoder)} tokens, not {VOCAB_SIZE}"
            )

    @property
    def sot_id(self) -> int:
        return SOT_ID

    @property
    def eot_id(self) -> int:
        return EOT_ID

    def _bpe(self, word: str) -> tuple[str, ...]:
        """Merge the symbols of one pre-token, lowest-ranked pair first, until none applies."""
        if word in (SOT_TOKEN, EOT_TOKEN):
            return (word,)
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        parts = [*word[:-1], word[-1] + "</w>"]
        ranks = self.merge_ranks
        while len(parts) > 1:
            best_rank, best_at = None, -1
            for i in range(len(parts) - 1):
                rank = ranks.get((parts[i], parts[i + 1]))
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best_at = rank, i
            if best_rank is None:
                break
            first, second = parts[best_at], parts[best_at + 1]
            merged: list[str] = []
            i = 0
            while i < len(parts):  # every non-overlapping (first, second), left to right
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        result = tuple(parts)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[word] = result
        return result

    def encode(self, text: str) -> list[int]:
        """BPE ids of one text, without SOT/EOT."""
        ids: list[int] = []
        for word in _WORD_PATTERN.findall(_clean(text)):
            symbols = "".join(self.byte_to_symbol[b] for b in word.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self._bpe(symbols))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ids; padding (0 after EOT), SOT and EOT are dropped."""
        pieces: list[str] = []
        for i in (int(x) for x in ids):
            if i == EOT_ID:
                break
            if i != SOT_ID:
                pieces.append(self.decoder[i])
        joined = "".join(pieces)
        text = bytes(self.symbol_to_byte[c] for c in joined).decode("utf-8", errors="replace")
        return text.replace("</w>", " ").strip()

    def tokenize(
        self, texts: str | Sequence[str], context_length: int | None = None
    ) -> torch.Tensor:
        """(N, context) int64 ids: SOT, BPE ids, EOT, zero padding.

        Too long: cut to `context` tokens and force EOT into the last slot (ViCLIP's
        `tokenize(..., truncate=True)`, which it always uses).
        """
        ctx = self.context_length if context_length is None else context_length
        if ctx < 2:
            raise ValueError(f"context_length must be >= 2, got {ctx}")
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), ctx, dtype=torch.long)  # (N, ctx)
        for row, text in enumerate(texts):
            ids = [SOT_ID, *self.encode(text), EOT_ID]
            if len(ids) > ctx:
                ids = ids[:ctx]
                ids[-1] = EOT_ID
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    __call__ = tokenize


@functools.cache
def get_tokenizer() -> ViCLIPTokenizer:
    """A process-wide tokenizer (reading the vocabulary takes ~0.2 s)."""
    return ViCLIPTokenizer()


def tokenize(texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """(N, context_length) int64 ids of `texts`, as ViCLIP's text tower expects them."""
    return get_tokenizer().tokenize(texts, context_length=context_length)
