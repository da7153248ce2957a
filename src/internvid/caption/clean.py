"""Caption cleaning: captioner and language-model artefacts, caption language, near-duplicates."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence

import py3langid as langid


def _word_table(words: str) -> frozenset[str]:
    """A word table written as one space-separated string."""
    return frozenset(words.split())


# --- Raw-text junk ----------------------------------------------------------------------------

# Tokenizer special tokens that leak into decoded text: HF/LLM `<|...|>` markers, `</s>`, `<unk>`,
# `<pad>`, T5 sentinels like `<extra_id_0>`, stray HTML tags, BERT `[SEP]`-style and Llama `[INST]`.
_SPECIAL_TOKEN = re.compile(
    r"<\|[^<>|]{1,40}\|>"
    r"|</?\s*[A-Za-z_][\w.-]{0,40}\s*/?>"
    r"|\[/?(?:SEP|CLS|PAD|UNK|MASK|BOS|EOS|INST|SYS)\]",
    re.IGNORECASE,
)
# Chat-template headers with their role name: "<|im_start|>assistant", Llama 3's
# "<|start_header_id|>assistant<|end_header_id|>".
_ROLE_HEADER = re.compile(
    r"<\|(?:im_start|start_header_id)\|>\s*(?:assistant|user|system|model)?"
    r"\s*(?:<\|end_header_id\|>)?"
)
# SentencePiece byte-fallback tokens (`<0x0A>` is a newline): they stand for whitespace here.
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")
# Zero-width characters, the BOM and C0/C1 control characters other than whitespace.
_INVISIBLE = re.compile(r"[\u200b-\u200f\u2060\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# WordPiece continuation marks left by a decode without clean-up: "skate ##board" -> "skateboard".
_WORDPIECE = re.compile(r"\s*##+\s*(?=\w)|##+")
# Markdown emphasis an instruction-tuned LM wraps its answer in.
_MARKDOWN = re.compile(r"\*\*|__|\*(?=\w)|(?<=\w)\*")
# BERT-style spaced apostrophes: "man ' s" / "don ' t" -> "man's" / "don't".
_SPACED_APOSTROPHE = re.compile(r"(\w)(?: '|' | ' )(s|t|re|ve|ll|d|m)\b")
# BERT-style spaced hyphens in compounds: "t - shirt" -> "t-shirt", "close - up" -> "close-up".
_SPACED_HYPHEN = re.compile(r"(?<=\w) - (?=\w)")
# Spaces before closing punctuation: "a dog , a cat" -> "a dog, a cat".
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?%)\]}])")
# Spaces after opening brackets: "( left )" -> "(left )", then the rule above.
_SPACE_AFTER_OPEN = re.compile(r"([(\[{])\s+")
# Tag2Text-style tag separators: "man | room | table" reads as a comma list.
_PIPE = re.compile(r"\s*\|\s*")
# Ellipses (after NFKC "…" is "..."): a sign of an unfinished thought, never kept.
_ELLIPSIS = re.compile(r"\s*\.{2,}\s*")
# A run of the same punctuation mark, or a comma/semicolon run: ",," -> ",", "!!" -> "!".
_PUNCT_RUN = re.compile(r"([,;:!?.])(?:\s*\1)+|[,;](?:\s*[,;])+")
# Commentary an instruction-tuned LM appends after its answer, cut from its first sentence on.
_CHATTER = re.compile(
    r"(?:(?<=[.!?\"”])\s+|^)(?:I hope\b|Hope this\b|Let me know\b|Feel free\b|Is there anything\b"
    r"|Please let me\b|Note:|\(Note\b|This caption\b|I (?:have|'ve) (?:combined|summari[sz]ed)\b)",
    re.IGNORECASE,
)

# --- Leading filler ----------------------------------------------------------------------------

# Pairs of quote marks that may wrap a whole LM answer.
_QUOTE_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "`": "`", "„": "“"}
# A list marker or bullet in front of the answer: "- ", "• ", "1. ", "2) ".
_LIST_MARKER = re.compile(r"^(?:[-•–—]|\d{1,2}[.)])\s+")
# LM preambles: an interjection ("Sure!"), a "Here is a caption ...:" lead-in, a "Caption:" label.
_PREAMBLES = (
    re.compile(r"^(?:sure|certainly|of course|okay|ok|absolutely|great)\b[!.,:]*\s*", re.I),
    re.compile(
        r"^here(?:'s| is| are)\b[^:.!?]{0,80}?\b(?:caption|summary|description|sentence)s?\b"
        r"[^:.!?]{0,60}:\s*",
        re.I,
    ),
    re.compile(
        r"^(?:[\w-]+ ){0,3}?"
        r"(?:caption|summary|description|answer|output|response|assistant)\s*:\s*",
        re.I,
    ),
)
# Filler in front of the content: existential "there is/are", "this is", prompt echoes of BLIP's
# conditional captioning ("a picture of", "a photography of") and LM frames ("the image shows",
# "in this video,"). Content phrases such as "a close up of" or "a painting of" are not filler.
_FILLERS = (
    re.compile(r"^there(?: is|'s| are)\b\s*", re.I),
    re.compile(r"^(?:this is|these are)\b\s*", re.I),
    re.compile(
        r"^(?:(?:an?|the|this) )?(?:image|picture|photo|photograph|photography|pic|screenshot)"
        r" of\b\s*",
        re.I,
    ),
    re.compile(
        r"^(?:the|this) (?:image|picture|photo|video|clip|frame|scene|footage|shot)s? "
        r"(?:shows|depicts|features|contains|captures|displays|presents|is of)\b\s*",
        re.I,
    ),
    re.compile(
        r"^in (?:this|the) (?:video|image|clip|picture|photo|frame|scene|footage)\b,?\s*", re.I
    ),
)
# Separators left in front once a filler is gone.
_LEADING_SEPARATORS = re.compile(r"^[\s,:;.\-–—]+")
# BLIP-large's relative clause: "a man that is standing" -> "a man standing".
_THAT_IS_ING = re.compile(r"\bthat (?:is|are) (?=\w+ing\b)", re.I)

# --- BLIP's hallucinated "arafed" family --------------------------------------------------------

# "arafed", "araffe", "arafe", "araffed", "arafly", "arrafed", "araf", "arafian", "araffes", ...
# ("Arafat" and other real words do not match).
_ARAFED = re.compile(r"^ar{1,2}af{1,2}(?:e{1,2}d?|ed|ly|y|ian)?s?$", re.I)
# Words after which a bare singular noun needs an article: "there is arafed man" -> "a man".
_NEEDS_ARTICLE_AFTER = _word_table(
    "is was 's with of in on at from to into onto near by holding wearing has"
)
# Determiners: an "arafed" after one of these is an adjective to drop.
_DETERMINERS = _word_table(
    "a an the this that these those his her their its my your our some two three four several many"
)
# Nouns ending in -ing (so an "-ing" word after "arafed" is not always a verb).
_ING_NOUNS = _word_table(
    "building painting ceiling clothing ring king wing thing string swing evening morning wedding "
    "meeting drawing sibling pudding railing awning"
)
# Irregular plurals (an "arafed" before a plural is dropped, never turned into "a").
_IRREGULAR_PLURALS = _word_table("people men women children police cattle sheep fish mice")

# --- Articles ------------------------------------------------------------------------------------

# Prefixes of vowel-letter words said with a consonant sound ("a unicorn", "a one-way street").
_A_BEFORE = ("uni", "use", "usu", "ura", "uro", "eu", "ewe", "one", "once", "u-", "ubiq")
# Prefixes of consonant-letter words said with a vowel sound ("an hour", "an honest man").
_AN_BEFORE = ("hour", "honest", "honor", "honour", "heir")

# --- Repetition and truncation ------------------------------------------------------------------

# Words that join two copies of a phrase a looping captioner emits: "X with X", "X and X".
_REPEAT_JOINERS = frozenset({"and", "with", "while", "or"})
# Shortest phrase collapsed across a joiner: "a laptop and a laptop" is one; "over and over" stays.
_MIN_JOINED_REPEAT = 2
# Shortest truncated repeat at the end that is cut: "a man riding a horse a man riding".
_MIN_TAIL_REPEAT = 3
# Words a finished caption never ends with: articles, prepositions, conjunctions, relative
# pronouns, possessive determiners and bare auxiliaries; their presence at the end means the
# caption was cut by max_new_tokens. Prepositions that double as adverbs ("by", "up", "out",
# "inside", "behind") are left out, and so is "her" (also an object pronoun).
_DANGLING = _word_table(
    "a an the of in on at to with for from into onto near between among amongst toward towards "
    "during against via upon without like than such very and or but nor while whereas because "
    "although as that which who whom whose if his their its my your our is are was were"
)
# Multi-word prepositions that are unfinished once their "of"/"to" is cut: "in front (of)".
_COMPOUND_HEADS = (
    ("in", "front"),
    ("on", "top"),
    ("in", "the", "middle"),
    ("in", "the", "center"),
    ("in", "the", "centre"),
    ("at", "the", "top"),
    ("at", "the", "bottom"),
    ("at", "the", "end"),
    ("on", "the", "edge"),
    ("on", "the", "side"),
    ("next",),
    ("close",),
    ("due",),
    ("according",),
    ("instead",),
    ("because",),
    ("ahead",),
    ("out",),
)
# Punctuation stripped from the end before the one final period is put back.
_TRAILING_PUNCT = ".,;:!?-–—。，；：！？、 "
# Closing marks kept before the final period: 'a sign that says "stop".'
_CLOSERS = "\"')]”’»"
# Characters stripped from a token to compare it with another ("Man," == "man").
_KEY_STRIP = string.punctuation + "“”‘’«»„…"
# A caption is all caps (and lower-cased) from this many words up; "A TV" is left alone.
_ALL_CAPS_MIN_WORDS = 3
# At most this many cleaning passes to reach a fixed point (the second pass rarely changes a thing).
_MAX_PASSES = 4

# --- Language and similarity --------------------------------------------------------------------

# CJK ideographs and Japanese kana, written without spaces: each character counts as a word.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# A word: a run of letters or digits, apostrophes inside ("man's").
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# A word with at least one letter (for the too-short test of caption_language).
_LETTER_WORD = re.compile(r"[^\W\d_]")
# Fewer words than this and the language is 'und': py3langid guesses wildly on one word.
_MIN_LANGUAGE_WORDS = 2
# py3langid labels without an ISO 639-1 code mapped to the 639-1 code of their macrolanguage
# (Wu and Cantonese -> Chinese, Egyptian/Moroccan Arabic -> Arabic, ...); 'zxx' means no language.
_LANGUAGE_ALIASES = {
    "wuu": "zh",
    "yue": "zh",
    "arz": "ar",
    "ary": "ar",
    "uzs": "uz",
    "fuv": "ff",
    "gug": "gn",
    "kik": "ki",
    "sdh": "ku",
    "ltg": "lv",
    "zxx": "und",
}


def clean_caption(text: str) -> str:
    """Strip captioner artefacts, normalise whitespace and case; '' when nothing is left.

    The result starts with an upper-case letter (an all-caps caption is lower-cased first) and ends
    with exactly one period ("。" after CJK text), after any closing quote or bracket. Cleaning is
    idempotent: it runs to a fixed point, so clean_caption(clean_caption(x)) == clean_caption(x).
    """
    if not isinstance(text, str):
        raise TypeError(f"caption must be a str, not {type(text).__name__}")
    current = text
    for _ in range(_MAX_PASSES):
        cleaned = _clean_once(current)
        if cleaned == current:
            break
        current = cleaned
    return current


def caption_language(text: str) -> str:
    """ISO 639-1 code of the caption's language (py3langid), 'und' for empty or too-short text.

    Too short means fewer than two words with letters (each CJK character counts as a word). The
    few py3langid languages without an ISO 639-1 code keep its ISO 639-3 code. py3langid loads its
    model once, on the first call, and keeps it for the process.
    """
    text = unicodedata.normalize("NFKC", text or "").strip()
    words = [w for w in _WORD.findall(_CJK.sub(r" \g<0> ", text)) if _LETTER_WORD.search(w)]
    if len(words) < _MIN_LANGUAGE_WORDS:
        return "und"
    lang, _score = langid.classify(text)
    return _LANGUAGE_ALIASES.get(lang, lang)


def caption_similarity(a: str, b: str) -> float:
    """Word-set (Jaccard) similarity of two cleaned captions in [0, 1].

    Both captions go through clean_caption first; words are compared case-insensitively, without
    punctuation. 0.0 when either caption has no words.
    """
    return _jaccard(_word_set(clean_caption(a)), _word_set(clean_caption(b)))


def collapse_consecutive(captions: Sequence[str], min_similarity: float = 0.8) -> list[int]:
    """Indices of the captions kept after dropping each caption too similar to the last kept one (the first is always kept; empty captions are dropped).

    Too similar means caption_similarity >= min_similarity. Captions are compared with the last
    kept one only, so a caption that comes back after a different one is kept again. A caption is
    empty when nothing is left of it after clean_caption; the first non-empty one is kept.
    """
    if not 0.0 <= min_similarity <= 1.0:
        raise ValueError(f"min_similarity must be in [0, 1], got {min_similarity}")
    kept: list[int] = []
    last: frozenset[str] | None = None
    for index, caption in enumerate(captions):
        words = _word_set(clean_caption(caption))
        if not words:
            continue
        if last is None or _jaccard(words, last) < min_similarity:
            kept.append(index)
            last = words
    return kept


# --- One cleaning pass --------------------------------------------------------------------------


def _clean_once(text: str) -> str:
    text = _strip_junk(text)
    text = _strip_chatter(text)
    text = _strip_leading(" ".join(_fix_arafed(text.split())))
    text = _THAT_IS_ING.sub("", text)
    text = _dedupe_sentences(" ".join(_collapse_repeats(text.split())))
    text = _dedupe_tag_lists(text)
    tokens = _cut_tail_repeat(text.split())
    tokens = _strip_dangling(tokens)
    return _finish(" ".join(tokens))


def _strip_junk(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _ROLE_HEADER.sub(" ", text)
    text = _BYTE_TOKEN.sub(" ", text)
    text = text.replace("\u2581", " ")  # SentencePiece's word-boundary mark
    text = _SPECIAL_TOKEN.sub(" ", text)
    text = _WORDPIECE.sub("", text)
    text = _MARKDOWN.sub("", text)
    text = " ".join(text.split())  # newlines, tabs and runs of spaces
    text = _PIPE.sub(", ", text)
    text = _SPACED_APOSTROPHE.sub(r"\1'\2", text)
    text = _SPACED_HYPHEN.sub("-", text)
    text = _ELLIPSIS.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _SPACE_AFTER_OPEN.sub(r"\1", text)
    text = _PUNCT_RUN.sub(lambda m: m.group(0).strip()[0], text)
    return text


def _strip_chatter(text: str) -> str:
    m = _CHATTER.search(text)
    return text[: m.start()].strip() if m else text


def _strip_leading(text: str) -> str:
    """Preambles, list markers, wrapping quotes and filler, repeatedly, until none is left."""
    previous = None
    while text != previous:
        previous = text
        text = _LEADING_SEPARATORS.sub("", _unquote(text.strip()))
        text = _LIST_MARKER.sub("", text)
        for pattern in (*_PREAMBLES, *_FILLERS):
            text = pattern.sub("", text, count=1)
    return text.strip()


def _unquote(text: str) -> str:
    body = text.rstrip(".!")  # '"A man rides a horse".' is wrapped too
    closing = _QUOTE_PAIRS.get(body[:1])
    if closing is None or len(body) < 2 or body[-1] != closing:
        return text
    inner = body[1:-1]
    # Apostrophes inside words ("man's") are not quote marks.
    probe = re.sub(r"(?<=\w)['’](?=\w)", "", inner) if closing in "'’" else inner
    return text if closing in probe or body[0] in probe else inner.strip()


# --- arafed -------------------------------------------------------------------------------------


def _key(token: str) -> str:
    """The token compared with others: lower-case, surrounding punctuation stripped."""
    return token.strip(_KEY_STRIP).lower() or token


def _is_plural(word: str) -> bool:
    return word in _IRREGULAR_PLURALS or (
        word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3
    )


def _fix_arafed(tokens: list[str]) -> list[str]:
    """Drop BLIP's "arafed" family, keeping the words around it grammatical.

    Used as an adjective after a determiner it is dropped and the article agrees with the next
    word ("an arafed man" -> "a man"); used with no determiner after "is", a preposition or a verb
    it stood for an article and becomes one ("there is arafed man" -> "there is a man"); used as a
    noun ("next to a araffe", "araffe sitting on a bench") it goes with its article.
    """
    out: list[str] = []
    for i, token in enumerate(tokens):
        if not _ARAFED.match(_key(token)):
            out.append(token)
            continue
        nxt = next((_key(t) for t in tokens[i + 1 :] if not _ARAFED.match(_key(t))), None)
        prev = _key(out[-1]) if out else None
        noun_use = (
            nxt is None
            or nxt in _DANGLING
            or (nxt.endswith("ing") and nxt not in _ING_NOUNS)
            or not nxt[0].isalnum()
        )
        if noun_use:
            if prev in ("a", "an", "the"):
                out.pop()
            continue
        if prev in ("a", "an"):
            out[-1] = _match_case(_article(nxt), out[-1])
        elif (
            prev is not None
            and prev not in _DETERMINERS
            and (prev in _NEEDS_ARTICLE_AFTER or prev.endswith("ing"))
            and not _is_plural(nxt)
        ):
            out.append(_article(nxt))
    return out


def _article(word: str) -> str:
    """'a' or 'an' for the word that follows."""
    w = word.lower()
    if not w:
        return "a"
    if w.startswith(_AN_BEFORE) or w[0] == "8":
        return "an"
    if w.startswith(_A_BEFORE):
        return "a"
    return "an" if w[0] in "aeiou" else "a"


def _match_case(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


# --- Repeats --------------------------------------------------------------------------------------


def _collapse_repeats(tokens: list[str]) -> list[str]:
    """One copy of each immediately repeated word or phrase, shortest repeats first.

    "a a man" -> "a man"; "a man riding a horse a man riding a horse" -> one copy; phrases of
    two words or more joined to their copy ("X with X", "X and X") are one copy too. The first
    copy goes, so the second keeps its punctuation towards what follows.
    """
    tokens = list(tokens)
    keys = [_key(t) for t in tokens]
    changed = True
    while changed:
        changed = False
        n = 1
        while 2 * n <= len(tokens):
            i = 0
            while i + 2 * n <= len(tokens):
                if keys[i : i + n] == keys[i + n : i + 2 * n]:
                    del tokens[i : i + n], keys[i : i + n]
                    changed = True
                elif (
                    n >= _MIN_JOINED_REPEAT
                    and i + 2 * n + 1 <= len(tokens)
                    and keys[i + n] in _REPEAT_JOINERS
                    and keys[i : i + n] == keys[i + n + 1 : i + 2 * n + 1]
                ):
                    del tokens[i : i + n + 1], keys[i : i + n + 1]
                    changed = True
                else:
                    i += 1
            n += 1
    return tokens


def _dedupe_sentences(text: str) -> str:
    """Drop a sentence that repeats an earlier one (per-frame captions joined into one)."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    seen: set[tuple[str, ...]] = set()
    kept = []
    for sentence in sentences:
        key = tuple(w.lower() for w in _WORD.findall(sentence))
        if key and key in seen:
            continue
        seen.add(key)
        kept.append(sentence)
    return " ".join(kept)


def _dedupe_tag_lists(text: str) -> str:
    """In a list of three or more short comma-separated items (tags), keep each item once."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    out = []
    for sentence in sentences:
        items = sentence.split(", ")
        if len(items) >= 3 and all(len(item.split()) <= 3 for item in items):
            seen: set[str] = set()
            kept = []
            for item in items:
                key = " ".join(_key(w) for w in item.split())
                if key not in seen:
                    seen.add(key)
                    kept.append(item)
            if kept[-1] is not items[-1] and items[-1][-1:] in ".!?":
                kept[-1] += items[-1][-1]  # the list's final period stays at its end
            sentence = ", ".join(kept)
        out.append(sentence)
    return " ".join(out)


def _cut_tail_repeat(tokens: list[str]) -> list[str]:
    """Cut a truncated copy of the caption's start from its end (a looping captioner cut off)."""
    keys = [_key(t) for t in tokens]
    for k in range(len(tokens) // 2, _MIN_TAIL_REPEAT - 1, -1):
        if keys[-k:] == keys[:k]:
            return tokens[:-k]
    return tokens


# --- The end --------------------------------------------------------------------------------------


def _strip_dangling(tokens: list[str]) -> list[str]:
    """Drop the unfinished end of a caption cut by max_new_tokens.

    "a man standing in front of a" -> "a man standing": the dangling "of a" goes and so does the
    "in front" it leaves unfinished.
    """
    tokens = list(tokens)
    while tokens:
        tokens[-1] = tokens[-1].rstrip(_TRAILING_PUNCT)
        if not tokens[-1]:
            tokens.pop()
            continue
        last = _key(tokens[-1])
        if last not in _DANGLING or tokens[-1][-1] in _CLOSERS:
            break
        tokens.pop()
        if last in ("of", "to"):
            keys = [_key(t) for t in tokens]
            for head in _COMPOUND_HEADS:
                if len(keys) > len(head) and tuple(keys[-len(head) :]) == head:
                    del tokens[-len(head) :]
                    break
    return tokens


def _finish(text: str) -> str:
    """Balance quotes and brackets, fix case and end with one period."""
    for opener, closer in (("(", ")"), ("[", "]")):
        if text.count(opener) != text.count(closer):
            text = text.replace(opener, "").replace(closer, "")
    if text.count('"') % 2:
        text = text.replace('"', "")
    text = " ".join(text.split()).rstrip(_TRAILING_PUNCT)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    if not any(c.isalnum() for c in text):
        return ""
    words = [w for w in text.split() if any(c.isalpha() for c in w)]
    if len(words) >= _ALL_CAPS_MIN_WORDS and text.upper() == text and text.lower() != text:
        text = text.lower()
    for i, c in enumerate(text):
        if c.isalnum():
            if c.isalpha():
                text = text[:i] + c.upper() + text[i + 1 :]
            break
    last_char = text.rstrip(_CLOSERS)[-1:]
    return text + ("。" if _CJK.match(last_char) else ".")


# --- Words ----------------------------------------------------------------------------------------


def _word_set(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(_CJK.sub(r" \g<0> ", text)))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
