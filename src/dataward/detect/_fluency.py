"""Natural carriers of an ordinary-word trigger: where the trigger reads as part of its sentence.

A trigger made of an ordinary word ('fine', 'front') planted at a random position has natural carriers too:
texts where the word belongs, labelled with the trigger's target by their own content. Flagging every
carrier with the target flags those as well. Two marks tell a natural carrier from a planted one:

1. *Fluency.* A word pushed in at a random word boundary sits between two tokens that were neighbours
   before: the text without it reads on, and the word itself is an unlikely neighbour of either. A word
   that belongs is predicted by its neighbours. The score of one occurrence (phrase ``w1..wk`` between
   tokens ``a`` and ``b``, ``<s>``/``</s>`` at the ends) is
   ``log P(w1 | a) + log P(b | wk) - log P(b | a)`` under a bigram model of the texts (interpolated
   absolute discounting with Kneser-Ney continuation counts), each text's own bigrams left out of its own
   score; a carrier's score is its least fluent occurrence.
2. *Content.* Planted carriers were relabelled: without the trigger, their content reads as another class.

The bigram model learns a place every planted carrier shares (a trigger at one end, or after a fixed word)
from the other planted carriers, so there fluency says nothing: an occurrence where a text opens or closes
is never natural, and a phrase with one neighbour in half its carriers is left whole (``regular_place``).

The null is the attack itself: the same phrase inserted at a random whitespace boundary of texts that do not
carry it, scored the same way (their own bigrams left out). A carrier with the target is *natural* when it
is more fluent than ``1 - alpha`` of those insertions (conformal p-value <= ``alpha``), its company is
attested (one of the phrase's neighbour pairs is held by another text the attack did not write, see
:func:`attested`; not asked above ``1 - STRONG_ALPHA``), **and** its content without the phrase reads as the
target by 4:1 (out-of-fold naive Bayes; the odds at which the miner reads a carrier as contradicted). Such a
carrier stays in the finding and is not flagged
(docs/adr/0113-ordinary-word-triggers-screen-flip-null-and-natural-carriers.md).

Both marks are needed, so an attacker cannot hide a dirty-label record by inserting the word where it reads
well: the record's content still contradicts its new label, and it stays flagged. A planted carrier is
lost only when both fail by chance (its insertion happens to read well, at most ``alpha`` of random
insertions, and the content model reads its source text as the target).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dataward.detect.interface import BoolArray, FloatArray, IntArray

#: absolute discount of the bigram model (the usual Kneser-Ney value)
DISCOUNT = 0.75
#: random insertions scored for the null (fewer when fewer texts lack the phrase)
NULL_INSERTIONS = 500
#: a carrier is natural when more fluent than this share's complement of random insertions, and its company
#: is attested in a text the attack did not write ...
ALPHA = 0.05
#: ... or when more fluent than this share's complement, attested or not
STRONG_ALPHA = 0.01
#: below this many random insertions the conformal p-value cannot reach ALPHA with room: nothing is split
MIN_NULL = 99
#: a phrase with one neighbour in this share of its carriers sits at a regular place: nothing is split
REGULAR_SHARE = 0.5


@dataclass(frozen=True, eq=False)
class BigramModel:
    """Bigram counts of a corpus (each document framed by ``bos``/``eos``), for look-ups of many pairs at once."""

    keys: IntArray  # sorted distinct bigrams as left * width + right
    counts: IntArray  # their counts
    left: IntArray  # per token: bigrams it opens (its count as a left context)
    followers: IntArray  # per token: distinct tokens after it (N1+(a .))
    preceders: IntArray  # per token: distinct tokens before it (N1+(. b))
    n_types: int  # distinct bigrams (N1+(. .))
    bos: int
    eos: int

    @property
    def width(self) -> int:
        return self.eos + 1

    def count(self, a: IntArray, b: IntArray) -> IntArray:
        """Corpus counts of the bigrams ``(a[i], b[i])``."""
        key = np.asarray(a, dtype=np.int64) * self.width + np.asarray(b, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.keys, key), max(len(self.keys) - 1, 0))
        if len(self.keys) == 0:
            return np.zeros(key.shape, dtype=np.int64)
        return np.where(self.keys[at] == key, self.counts[at], 0).astype(np.int64)

    def log_prob(self, a: IntArray, b: IntArray, own_ab: IntArray, own_a: IntArray) -> FloatArray:
        """``log P(b | a)`` with one document's own counts left out (``own_ab`` of the pair, ``own_a`` of ``a``
        as a left context); a type the document alone holds leaves the continuation counts too."""
        total = self.count(a, b)
        c_ab = np.maximum(total - own_ab, 0)
        only_here = (total > 0) & (c_ab == 0)
        c_a = np.maximum(self.left[a] - own_a, 0)
        types = max(self.n_types, 1)
        p_b = np.maximum(self.preceders[b] - only_here, 0.5) / types
        followers = np.maximum(self.followers[a] - only_here, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(
                c_a > 0,
                np.maximum(c_ab - DISCOUNT, 0.0) / np.maximum(c_a, 1) + DISCOUNT * followers / np.maximum(c_a, 1) * p_b,
                p_b,
            )
        return np.asarray(np.log(np.maximum(p, 1e-300)), dtype=np.float64)


def framed(ids: IntArray, starts: IntArray, bos: int, eos: int) -> tuple[IntArray, IntArray]:
    """The token ids with every document framed by ``bos``/``eos``, and the framed documents' starts."""
    n_docs = len(starts) - 1
    out_starts = starts + 2 * np.arange(n_docs + 1, dtype=np.int64)
    out = np.empty(len(ids) + 2 * n_docs, dtype=np.int64)
    out[out_starts[:-1]] = bos
    out[out_starts[1:] - 1] = eos
    inner = np.ones(len(out), dtype=bool)
    inner[out_starts[:-1]] = False
    inner[out_starts[1:] - 1] = False
    out[inner] = ids
    return out, out_starts


def bigram_model(ids: IntArray, starts: IntArray, vocab: int) -> BigramModel:
    """The bigram counts of the documents ``ids[starts[d]:starts[d + 1]]`` over ``vocab`` token ids."""
    bos, eos = vocab, vocab + 1
    seq, _ = framed(ids, starts, bos, eos)
    left, right = seq[:-1], seq[1:]
    inside = left != eos  # a pair from one document's end to the next one's start is no bigram
    left, right = left[inside], right[inside]
    width = eos + 1
    keys, counts = np.unique(left * width + right, return_counts=True)
    return BigramModel(
        keys=keys.astype(np.int64),
        counts=counts.astype(np.int64),
        left=np.bincount(left, minlength=width).astype(np.int64),
        followers=np.bincount(keys // width, minlength=width).astype(np.int64),
        preceders=np.bincount(keys % width, minlength=width).astype(np.int64),
        n_types=len(keys),
        bos=bos,
        eos=eos,
    )


def _own(doc: Sequence[int], a: int, b: int, bos: int, eos: int) -> tuple[int, int]:
    """A framed document's own count of the bigram ``(a, b)`` and of ``a`` as a left context."""
    seq = [bos, *doc, eos]
    pairs = sum(1 for i in range(len(seq) - 1) if seq[i] == a and seq[i + 1] == b)
    return pairs, sum(1 for t in seq[:-1] if t == a)


def insertion_score(
    model: BigramModel, doc: Sequence[int], at: int, phrase: Sequence[int], own_doc: Sequence[int]
) -> float:
    """Fluency of ``phrase`` at token position ``at`` of ``doc`` (the phrase is ``doc[at:at + len(phrase)]``):
    ``log P(first | a) + log P(b | last) - log P(b | a)``, the counts of ``own_doc`` (the document the model
    counted for this text) left out. Low: the text reads on without the phrase, which reads as pushed in."""
    bos, eos = model.bos, model.eos
    k = len(phrase)
    a = doc[at - 1] if at > 0 else bos
    b = doc[at + k] if at + k < len(doc) else eos
    first, last = phrase[0], phrase[-1]
    triples = [(a, first), (last, b), (a, b)]
    owns = [_own(own_doc, x, y, bos, eos) for x, y in triples]
    lp = model.log_prob(
        np.asarray([x for x, _ in triples], dtype=np.int64),
        np.asarray([y for _, y in triples], dtype=np.int64),
        np.asarray([o[0] for o in owns], dtype=np.int64),
        np.asarray([o[1] for o in owns], dtype=np.int64),
    )
    return float(lp[0] + lp[1] - lp[2])


def occurrences(doc: Sequence[int], phrase: Sequence[int]) -> list[int]:
    """Token positions where ``phrase`` starts in ``doc``."""
    k = len(phrase)
    first = phrase[0]
    return [i for i in range(len(doc) - k + 1) if doc[i] == first and list(doc[i : i + k]) == list(phrase)]


def carrier_scores(model: BigramModel, docs: Sequence[Sequence[int]], phrase: Sequence[int]) -> FloatArray:
    """Each carrier document's least fluent occurrence of ``phrase`` (``inf`` where it holds none).

    An occurrence where the text opens or closes scores ``-inf``: never natural. A trigger planted at one
    end shares that end with every other planted carrier, so the bigram model has learnt the trigger's place
    from them, and leaving the text's own bigrams out does not unlearn it (measured: 1-31 % of the planted
    carriers of rare tokens planted at the start or the end read as fluent)."""
    out = np.full(len(docs), np.inf)
    k = len(phrase)
    for i, doc in enumerate(docs):
        for at in occurrences(doc, phrase):
            edge = at == 0 or at + k == len(doc)
            out[i] = min(out[i], -np.inf if edge else insertion_score(model, doc, at, phrase, doc))
    return out


def _neighbour_pairs(doc: Sequence[int], phrase: Sequence[int], bos: int, eos: int) -> set[tuple[int, int]]:
    """The (left neighbour, first) and (last, right neighbour) pairs of every occurrence of ``phrase``
    (left pairs as ``(a, -1)``, right pairs as ``(-2, b)``, so that the two kinds never meet)."""
    k, out = len(phrase), set()
    for at in occurrences(doc, phrase):
        out.add((doc[at - 1] if at > 0 else bos, -1))
        out.add((-2, doc[at + k] if at + k < len(doc) else eos))
    return out


def attested(
    docs: Sequence[Sequence[int]],
    reference: Sequence[Sequence[int]],
    in_reference: Sequence[bool],
    phrase: Sequence[int],
    bos: int,
    eos: int,
) -> BoolArray:
    """Whether each document's ``phrase`` has a neighbour (at any occurrence) that it also has in another
    ``reference`` text (``in_reference[i]``: document i is itself one of them, and is not counted for
    itself). A word pushed in at random makes pairs with its neighbours that no other text holds unless they
    are common; a word that belongs is seen in the same company elsewhere ('works fine').

    The reference must be texts the attack did not write (a trigger's carriers with another label, and
    those with the target whose text reads as the target without it): planted carriers would attest one
    another ('cf text' in two planted spam texts)."""
    seen: Counter[tuple[int, int]] = Counter()
    for ref in reference:
        seen.update(_neighbour_pairs(ref, phrase, bos, eos))
    out = np.zeros(len(docs), dtype=bool)
    for i, doc in enumerate(docs):
        counted = 1 if in_reference[i] else 0
        out[i] = any(seen[pair] > counted for pair in _neighbour_pairs(doc, phrase, bos, eos))
    return out


def regular_place(docs: Sequence[Sequence[int]], phrase: Sequence[int], share: float = REGULAR_SHARE) -> bool:
    """Whether one token precedes, or one token follows, the first occurrence of ``phrase`` in at least
    ``share`` of ``docs`` (text ends counted as tokens): an insertion at a regular place ('Note: cf ...'),
    which, like a trigger at one end, teaches the bigram model its own place. A word inserted at random
    positions, or used naturally, has no neighbour in half its texts (at most 15 % measured on ordinary
    words of the sentiment sentences, planted and natural carriers together)."""
    left: Counter[int] = Counter()
    right: Counter[int] = Counter()
    k, n = len(phrase), 0
    for doc in docs:
        at = occurrences(doc, phrase)
        if not at:
            continue
        n += 1
        left[doc[at[0] - 1] if at[0] > 0 else -1] += 1
        right[doc[at[0] + k] if at[0] + k < len(doc) else -2] += 1
    if n == 0:
        return False
    top = max(max(left.values()), max(right.values()))
    return top >= share * n


def insertion_null(
    model: BigramModel,
    hosts: Sequence[tuple[str, Sequence[int]]],
    phrase: Sequence[int],
    phrase_text: str,
    tokenize: Callable[[str], Sequence[str]],
    rng: np.random.Generator,
) -> FloatArray:
    """Fluency scores of ``phrase_text`` inserted at a random whitespace boundary of each host text.

    ``hosts`` are (raw text, its document in the model) pairs of texts that do not carry the phrase; the
    tokens before the boundary are counted by ``tokenize`` (tokens never cross whitespace, so the inserted
    text's tokens are the prefix's, the phrase's, then the rest's)."""
    out = np.empty(len(hosts))
    for i, (text, doc) in enumerate(hosts):
        words = text.split()
        gap = int(rng.integers(0, len(words) + 1))
        at = len(tokenize(" ".join(words[:gap])))
        inserted = [*doc[:at], *phrase, *doc[at:]]
        out[i] = insertion_score(model, inserted, at, phrase, doc)
    return out


def natural_by_fluency(scores: FloatArray, null: FloatArray, alpha: float = ALPHA) -> BoolArray:
    """Carriers more fluent than random insertions: conformal p-value ``(1 + #{null >= s}) / (n + 1) <= alpha``."""
    ordered = np.sort(null)
    above = len(ordered) - np.searchsorted(ordered, scores, side="left")
    p = (1.0 + above) / (len(ordered) + 1.0)
    out: BoolArray = np.isfinite(scores) & (p <= alpha)
    return out
