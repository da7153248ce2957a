"""Query text normalisation and the dedup key (rule-based singular, leading articles ignored).

`normalize(text)` is the display form of a phrase: NFKC, lower case, punctuation (hyphens,
underscores, slashes, brackets, parentheses...) turned into spaces with the words inside
brackets and parentheses kept, whitespace collapsed. An apostrophe inside a word stays
(`person's`, `driver's`), and a detached possessive is attached again (`one 's` -> `one's`).

`dedup_key(text)` is what two phrases must share to be one query: the normalised words, a
leading article dropped, each word made singular by suffix rules with an exception list
(`dogs` -> `dog`, `puppies` -> `puppy`, `boxes` -> `box`, `watches` -> `watch`; `glass`, `bus`,
`tennis`, `chess`, `news`, `this`, `is`, `was` unchanged), possessives dropped. Verb forms are
never merged: `playing guitar` and `play guitar` keep two keys (an -ing rule cannot tell
`playing` from `ceiling` or `bring`, and InternVid lists both forms as separate queries).
"""

from __future__ import annotations

import re
import unicodedata

ARTICLES = frozenset({"a", "an", "the"})  # dropped when they lead a phrase (dedup key only)

# words that end like a plural but are not one (kept as they are)
_NOT_PLURAL = """
    is was has his hers its this thus yes us as gas bus plus abs does goes
    news series species means lens clothes christmas atlas canvas alias bias texas vegas
    chaos kudos cosmos ethos pathos always perhaps whereas overseas sometimes
"""
NOT_PLURAL = frozenset(_NOT_PLURAL.split())
# plurals the suffix rules get wrong -> their singular
IRREGULAR = {
    "men": "man",
    "women": "woman",
    "children": "child",
    "people": "person",
    "feet": "foot",
    "teeth": "tooth",
    "geese": "goose",
    "mice": "mouse",
    "knives": "knife",
    "leaves": "leaf",
    "wolves": "wolf",
    "halves": "half",
    "shelves": "shelf",
    "loaves": "loaf",
    "calves": "calf",
    "scarves": "scarf",
    "hooves": "hoof",
    "thieves": "thief",
    "elves": "elf",
    "buses": "bus",
    "gases": "gas",
    "lenses": "lens",
    "canvases": "canvas",
    "atlases": "atlas",
    "axes": "axe",
    "quizzes": "quiz",
    "potatoes": "potato",
    "tomatoes": "tomato",
    "heroes": "hero",
    "echoes": "echo",
    "volcanoes": "volcano",
    "mosquitoes": "mosquito",
    "torpedoes": "torpedo",
    "dominoes": "domino",
    "aches": "ache",
    "headaches": "headache",
    "toothaches": "toothache",
    "backaches": "backache",
    "earaches": "earache",
    "mustaches": "mustache",
    "moustaches": "moustache",
}
# nouns in -ie whose plural -ies must not become -y
_IE_NOUNS = """
    movie cookie tie pie lie brownie zombie smoothie selfie hoodie rookie calorie goalie
    prairie veggie birdie genie newbie aussie boogie
"""
IE_NOUNS = frozenset(_IE_NOUNS.split())

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_DETACHED_POSSESSIVE = re.compile(r"(?<=\w)\s+'s\b")  # "one 's nose" -> "one's nose"
_KEEP_APOSTROPHE = re.compile(r"(?<=[^\W_])'(?=[^\W_])")  # inside a word
_NOT_WORD = re.compile(r"[^\w\s\x00]|_")  # punctuation, symbols, underscores (\x00: a kept ')
_SPACES = re.compile(r"\s+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def normalize(text: str) -> str:
    """The display form of a phrase (see the module docstring); "" when nothing is left."""
    s = unicodedata.normalize("NFKC", text.replace("\x00", "")).translate(_APOSTROPHES).lower()
    s = _DETACHED_POSSESSIVE.sub("'s", s)
    s = _KEEP_APOSTROPHE.sub("\x00", s)
    s = _NOT_WORD.sub(" ", s).replace("\x00", "'")
    return _SPACES.sub(" ", s).strip()


def singular(word: str) -> str:
    """`word` made singular by suffix rules (a word that is not a plural is returned as it is)."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    if len(word) <= 2 or word in NOT_PLURAL or not word.endswith("s"):
        return word
    if word.endswith(("ss", "us", "is", "ics", "'s")):
        return word[:-2] if word.endswith("'s") else word
    if word.endswith("ies") and len(word) > 4:
        return word[:-1] if word[:-1] in IE_NOUNS else word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return word[:-2]
    return word[:-1]


def dedup_key(text: str) -> str:
    """The key two phrases share when they are the same query (see the module docstring)."""
    words = normalize(text).split()
    while len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    return " ".join(singular(w).replace("'", "") for w in words)


def camel_words(name: str) -> str:
    """A CamelCase class name as words: "ApplyEyeMakeup" -> "Apply Eye Makeup"."""
    return _CAMEL.sub(" ", name)


def word_count(text: str) -> int:
    return len(normalize(text).split())
