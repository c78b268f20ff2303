"""What a line's words and word order say about mood, beyond its averaged word vectors.

A sentence embedding made by averaging static word vectors blurs the small words that carry
anger: "not happy" sits next to "happy", "never been treated this badly" next to "treated", and
"oh brilliant, what a help" next to praise. These features keep them, for the frustration model:

- hashed word unigrams and bigrams of the normalised line (lower case, no punctuation or
  apostrophes, so the written and the recogniser's form of a line share their features);
- negation scope: the three words after a negator are also counted as `NOT_<word>`;
- hashed character 4-grams inside words, so a misspelt or mis-heard word ("furious" / "furius")
  keeps most of its evidence;
- a few dense cues: exclamation marks, words in capitals, blame aimed at "you/your company",
  intensifiers before a word, a positive word in a complaint (the shape of sarcasm).

Hashing uses CRC-32 (stable across processes, unlike Python's `hash`), so the same line always
gives the same vector and training reproduces its weights.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import numpy.typing as npt

WORD_BUCKETS = 2048
CHAR_BUCKETS = 1024
CUES = 6
DIM = WORD_BUCKETS + CHAR_BUCKETS + CUES
_WORD_SCALE = 2.0  # the hashed blocks are L2-normalised; scaled to the other features' range
_CHAR_SCALE = 1.0

_NEGATORS = frozenset({"not", "never", "no", "nothing", "nobody", "none", "dont", "doesnt", "didnt",
                       "cant", "cannot", "wont", "isnt", "wasnt", "arent", "havent", "hasnt",
                       "wouldnt", "couldnt", "shouldnt", "aint", "hardly", "neither", "nor"})
_SCOPE = 3
_BLAME = re.compile(r"\b(you people|you lot|you guys|your (company|lot|firm|service|staff|people|"
                    r"bank|outfit)|this (company|firm|outfit|place)|you (have|ve|always|never|keep|"
                    r"clearly|just|obviously|lied|lie|promised|said|told))\b")
_INTENSIFIER = re.compile(r"\b(so|absolutely|utterly|completely|totally|really|extremely|"
                          r"bloody|beyond|ever|truly|seriously|thoroughly)\b")
_POSITIVE = re.compile(r"\b(great|brilliant|fantastic|wonderful|lovely|marvellous|perfect|amazing|"
                       r"super|superb|excellent|thanks|cheers|nice|impressive|genius|terrific)\b")
_NEGATIVE = re.compile(r"\b(again|nothing|not|never|late|lost|wrong|wasted|waiting|hour|hours|"
                       r"twice|cut off|no one|nobody|another|worse|worst|bad|broken)\b")


def normalise(text: str) -> str:
    """Lower case without apostrophes or punctuation: the recogniser's form of a written line."""
    return re.sub(r"\s+", " ",
                  re.sub(r"[^\w\s]", " ", text.lower().replace("'", "").replace("’", ""))).strip()


def _bucket(token: str, buckets: int) -> int:
    return zlib.crc32(token.encode()) % buckets


def _unit(counts: npt.NDArray[np.float64], scale: float) -> npt.NDArray[np.float64]:
    norm = float(np.linalg.norm(counts))
    return counts * (scale / norm) if norm > 0 else counts


def word_tokens(words: list[str]) -> list[str]:
    """Unigrams, bigrams and negation-scoped words of a normalised, split line."""
    tokens = list(words)
    tokens += [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]  # each word and the next
    scope = 0
    for word in words:
        if word in _NEGATORS:
            scope = _SCOPE
            continue
        if scope:
            tokens.append(f"NOT_{word}")
            scope -= 1
    return tokens


def cues(text: str, plain: str) -> list[float]:
    """Dense mood cues a bag of words misses."""
    words = re.findall(r"[A-Za-z]+", text)
    shouted = sum(1 for w in words if len(w) > 2 and w.isupper())
    return [
        min(text.count("!"), 3) / 3.0,
        min(shouted, 3) / 3.0,
        min(len(_BLAME.findall(plain)), 2) / 2.0,
        min(len(_INTENSIFIER.findall(plain)), 2) / 2.0,
        1.0 if _POSITIVE.search(plain) and _NEGATIVE.search(plain) else 0.0,
        1.0 if re.search(r"\b(worst|never been|ever (had|dealt|seen))\b", plain) else 0.0,
    ]


def lexical_features(text: str) -> npt.NDArray[np.float64]:
    """The lexical feature vector of one line (DIM values)."""
    plain = normalise(text)
    words = plain.split()
    word_counts = np.zeros(WORD_BUCKETS)
    for token in word_tokens(words):
        word_counts[_bucket(token, WORD_BUCKETS)] += 1.0
    char_counts = np.zeros(CHAR_BUCKETS)
    for word in words:
        padded = f"<{word}>"
        for i in range(len(padded) - 3):
            char_counts[_bucket(padded[i:i + 4], CHAR_BUCKETS)] += 1.0
    return np.concatenate([_unit(word_counts, _WORD_SCALE), _unit(char_counts, _CHAR_SCALE),
                           np.asarray(cues(text, plain), dtype=np.float64)])
