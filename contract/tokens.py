"""The text models' words: the normalisation rules every sentiment SavedModel runs in its graph, and
the same words in Python with where each one came from in the original text.

Training builds its in-graph vectorizer from `rules()` (training/text_preprocessing.py), so the
rules live here, once. The service's explanations (service.core.explaining) need what the graph
cannot give: for each word the model saw, the characters of the request's text it came from, so
that a weight can be shown on them and a word can be left out by blanking those characters.

`Tokenizer.tokens` applies the same rules to a Python string while tracking, for every character
of the rewritten text, the span of original characters it stands for: a character copied by a
rule (itself, or through a group such as `\\1`) keeps its own span, and a character a rule wrote
(`xxurl`, the space of "do n't") stands for the whole text that rule matched. A word's span is
from its first character's start to its last character's end, as Python string indices (code
points). tests/contract/test_tokens.py checks the words against TensorFlow's own ops.

TensorFlow runs the rules with RE2, Python with the `regex` package; `_python_pattern` turns an
RE2 pattern into one that means the same there: ASCII-only `\\w`, `\\b` and `\\d` (RE2's; the
`regex` package's are Unicode), RE2's `\\s` (which lacks the vertical tab) and `$` at the very end
only (not also before a last newline).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import regex
from pydantic import BaseModel, ConfigDict

# HTML remnants in IMDB reviews (`<br /><br />`) and entities in tweets (`&amp;`).
_HTML_RULES = [
    (r"<[^>]*>", " "),
    (r"&amp;", " and "),
    (r"&(lt|gt|quot|nbsp);", " "),
    (r"&#0*39;|&apos;", "'"),
    (r"&#?\w+;", " "),
]
# Tweets, applied before lower-casing so that "RT" (retweet) is told apart from "rt".
_SOCIAL_RULES = [
    (r"(?i)\b(https?://|www\.)\S*", " xxurl "),  # a link's text carries no sentiment
    (r"(^|\s)RT\b:?", " xxrt "),  # retweet marker, kept as one token
    (r"@(\w+)", " \\1 "),  # @realDonaldTrump -> realdonaldtrump: who is addressed matters
    (r"#(\w+)", " \\1 "),  # #GOPDebate -> gopdebate: hashtags are words
]
# Hashtags split where the case changes, before the rules above drop the '#':
# #GOPDebate -> #GOP #Debate, #DebateWithBernie -> #Debate #With #Bernie (GloVe knows the words).
# RE2 has no look-around, so a lower->upper boundary is split once per pass.
_HASHTAG_RULES = [(r"#(\w*?\p{Ll})(\p{Lu})", "#\\1 #\\2")] * 4 + [(r"#(\p{Lu}+)(\p{Lu}\p{Ll})", "#\\1 #\\2")]
# Split the clitics the way GloVe 6B was tokenised ("don't" -> "do n't", "it's" -> "it 's"),
# after dropping quotes that are not inside a word.
_WORD_RULES = [
    (r"(^|[^\p{L}\p{N}])'+", "\\1 "),
    (r"'+([^\p{L}\p{N}]|$)", " \\1"),
    (r"n't\b", " n't"),
    (r"'(s|re|ve|ll|d|m)\b", " '\\1"),
    (r"([!?])", " \\1 "),  # kept: "!" and "?" carry sentiment and are in GloVe
    (r"[^\p{L}\p{N}'!?\s]", " "),  # any other punctuation or symbol
    (r"\s+", " "),
]

Rule = tuple[str, str]  # an RE2 pattern and its replacement (`\\1` for a group)


def rules(social: bool, split_hashtags: bool) -> tuple[list[Rule], list[Rule]]:
    """(the rules before lower-casing, the rules after it), in the order the graph runs them."""
    before = (_HASHTAG_RULES if split_hashtags else []) + (_SOCIAL_RULES if social else []) + _HTML_RULES
    return before, list(_WORD_RULES)


class TokenizerSpec(BaseModel):
    """A text card's `input.tokenizer`: which of the rules above its graph runs, and which words it keeps.

    A card without it still serves; its versions just cannot explain (the service cannot know
    which words the graph saw).
    """

    model_config = ConfigDict(extra="forbid")
    rules: Literal["glove-words"] = "glove-words"  # the rule set above; a new set is a new name
    social: bool = False
    split_hashtags: bool = False
    keep: Literal["head", "tail"] = "head"  # which `max_tokens` words of a longer text


    def rule_set(self) -> frozenset[Rule]:
        """Every rule this spec's graph runs (what `rules_in_graph` finds in it)."""
        before, after = rules(self.social, self.split_hashtags)
        return frozenset(before + after)


def rules_in_graph(graph: Any) -> frozenset[Rule]:
    """The regular-expression rules a TensorFlow GraphDef runs, the functions it calls included."""
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    return frozenset(
        (node.attr["pattern"].s.decode(), node.attr["rewrite"].s.decode())
        for node in nodes
        if node.op in ("StaticRegexReplace", "RegexReplace")
    )


def spec_for_rules(found: frozenset[Rule], keep: Literal["head", "tail"]) -> TokenizerSpec | None:
    """The spec whose rules are exactly `found` (what `rules_in_graph` finds in a text model's graph), or
    None: how a card is given the `input.tokenizer` of a graph trained before cards declared one."""
    for social in (False, True):
        for split_hashtags in (False, True):
            spec = TokenizerSpec(social=social, split_hashtags=split_hashtags, keep=keep)
            if spec.rule_set() == found:
                return spec
    return None


@dataclass(frozen=True, slots=True)
class Token:
    """One word the model saw: its normalised text, and the characters [start, end) of the original."""

    text: str
    start: int
    end: int


class Tokenizer:
    def __init__(self, spec: TokenizerSpec, max_tokens: int) -> None:
        self.spec, self.max_tokens = spec, max_tokens
        before, after = rules(spec.social, spec.split_hashtags)
        self._before = [_compiled(pattern, replacement) for pattern, replacement in before]
        self._after = [_compiled(pattern, replacement) for pattern, replacement in after]

    def tokens(self, text: str) -> list[Token]:
        """The words the model sees in `text`, after its truncation, with their spans in `text`."""
        mapped = _Mapped(text, [(i, i + 1) for i in range(len(text))])
        for rule in self._before:
            mapped = rule.apply(mapped)
        mapped = mapped.lower()
        for rule in self._after:
            mapped = rule.apply(mapped)
        words = _words(mapped)
        return words[: self.max_tokens] if self.spec.keep == "head" else words[-self.max_tokens :]


@dataclass(frozen=True, slots=True)
class _Mapped:
    """A rewritten text, and for each of its characters the span of the original it stands for."""

    text: str
    spans: list[tuple[int, int]]

    def lower(self) -> _Mapped:
        lowered = self.text.lower()
        if len(lowered) == len(self.text):
            return _Mapped(lowered, self.spans)
        # A character whose lower case is longer ("İ" -> "i̇"): each of its characters keeps its span.
        # (Lower-casing the whole text, not each character, keeps the final sigma: "ΟΣ" -> "ος".)
        spans = [span for char, span in zip(self.text, self.spans, strict=True) for _ in char.lower()]
        return _Mapped(lowered, spans)


@dataclass(frozen=True)
class _Rule:
    pattern: regex.Pattern[str]
    replacement: list[str | int]  # literal text, or a group number

    def apply(self, mapped: _Mapped) -> _Mapped:
        text, spans = mapped.text, mapped.spans
        pieces: list[str] = []
        new_spans: list[tuple[int, int]] = []
        done = 0
        for match in self.pattern.finditer(text):
            start, end = match.span()
            pieces.append(text[done:start])
            new_spans.extend(spans[done:start])
            # What a rule writes stands for everything it matched.
            if start < end:
                whole = (spans[start][0], spans[end - 1][1])
            else:
                at = spans[start][0] if start < len(spans) else (spans[-1][1] if spans else 0)
                whole = (at, at)
            for part in self.replacement:
                if isinstance(part, str):
                    pieces.append(part)
                    new_spans.extend([whole] * len(part))
                else:
                    group_start, group_end = match.span(part)
                    if group_start >= 0:
                        pieces.append(text[group_start:group_end])
                        new_spans.extend(spans[group_start:group_end])
            done = end
        if done == 0 and not pieces:
            return mapped
        pieces.append(text[done:])
        new_spans.extend(spans[done:])
        return _Mapped("".join(pieces), new_spans)


def _words(mapped: _Mapped) -> list[Token]:
    """The space-separated words of a normalised text (the last rule left single spaces only)."""
    words = []
    position = 0
    for word in mapped.text.split(" "):
        if word:
            spans = mapped.spans[position : position + len(word)]
            words.append(Token(word, min(s for s, _ in spans), max(e for _, e in spans)))
        position += len(word) + 1
    return words


@cache
def _compiled(pattern: str, replacement: str) -> _Rule:
    parts: list[str | int] = []
    for piece in regex.split(r"(\\[1-9])", replacement):
        if piece.startswith("\\") and len(piece) == 2:
            parts.append(int(piece[1]))
        elif piece:
            parts.append(piece)
    return _Rule(regex.compile(_python_pattern(pattern), regex.V0), parts)


def _python_pattern(pattern: str) -> str:
    """An RE2 pattern as the `regex` package must read it to match the same text (module docstring)."""
    re2_space, word = r"\t\n\f\r ", "0-9A-Za-z_"
    out = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escape = pattern[i : i + 2]
            if escape == r"\s":
                out.append(re2_space if in_class else f"[{re2_space}]")
            elif escape == r"\w":
                out.append(word if in_class else f"[{word}]")
            elif escape == r"\d":
                out.append("0-9" if in_class else "[0-9]")
            elif escape == r"\b":
                out.append(r"(?a:\b)")
            elif escape == r"\S":
                if in_class:
                    raise ValueError(f"\\S inside a class has no translation: {pattern!r}")
                out.append(f"[^{re2_space}]")
            else:
                out.append(escape)
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
        i += 1
    return "".join(out)
