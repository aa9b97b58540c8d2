"""Referring expressions: a small closed grammar, its parser, its meaning over a scene, and the generator.

    expression := NP | NP MOTION | NP RELATION NP
    NP         := "the" [size] [colour] [texture] (shape | "object")

An expression is generated only when evaluating it over the scene selects exactly its target; the parser
lets anyone (the tests, a data loader) re-check that from the text alone.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from strvos_core.datasets.synthetic.predicates import SceneFacts
from strvos_core.datasets.synthetic.vocabulary import (
    ARTICLE,
    ATTRIBUTE_VALUES,
    ATTRIBUTES,
    GENERIC_NOUN,
    MOTION_PHRASES,
    RELATIONS,
)

Attributes = tuple[tuple[str, str], ...]  # (name, value) pairs in ATTRIBUTES order


@dataclass(frozen=True)
class Query:
    """The meaning of an expression. `attributes` describe the target; `landmark` the relation's anchor."""

    kind: str  # "appearance" | "relation" | "motion"
    attributes: Attributes = ()
    motion: str | None = None
    relation: str | None = None
    landmark: Attributes | None = None

    def text(self) -> str:
        words = noun_phrase(self.attributes)
        if self.kind == "motion":
            return f"{words} {MOTION_PHRASES[self.motion]}"
        if self.kind == "relation":
            return f"{words} {self.relation} {noun_phrase(self.landmark or ())}"
        return words


@dataclass(frozen=True)
class Expression:
    """One referring expression of a video: its id (a string, as in meta_expressions.json) and target."""

    exp_id: str
    text: str
    obj_id: int
    kind: str
    query: Query | None = None  # parsed from `text` when not given

    def __post_init__(self) -> None:
        if self.query is None:
            object.__setattr__(self, "query", parse_expression(self.text))
        if self.query.kind != self.kind:
            raise ValueError(f"expression {self.text!r} is a {self.query.kind} expression, not {self.kind!r}")


def noun_phrase(attributes: Attributes) -> str:
    values = dict(attributes)
    words = [ARTICLE] + [values[name] for name in ATTRIBUTES[:-1] if name in values]
    words.append(values.get("shape", GENERIC_NOUN))
    return " ".join(words)


def parse_expression(text: str) -> Query:
    """The Query of a generated expression; ValueError naming the problem for anything off-grammar."""
    words = text.strip().split()
    attributes, rest = _parse_noun_phrase(words, text)
    if not rest:
        return Query("appearance", attributes)
    tail = " ".join(rest)
    for motion, phrase in MOTION_PHRASES.items():
        if tail == phrase:
            return Query("motion", attributes, motion=motion)
    for relation in RELATIONS:
        size = len(relation.split())
        if " ".join(rest[:size]) == relation:
            landmark, after = _parse_noun_phrase(rest[size:], text)
            if after:
                raise ValueError(f"expression {text!r}: unexpected words {' '.join(after)!r} after the landmark")
            return Query("relation", attributes, relation=relation, landmark=landmark)
    raise ValueError(f"expression {text!r}: {tail!r} is neither a motion nor a relation of the vocabulary")


def _parse_noun_phrase(words: list[str], text: str) -> tuple[Attributes, list[str]]:
    if not words or words[0] != ARTICLE:
        raise ValueError(f"expression {text!r}: a noun phrase must start with {ARTICLE!r}")
    i = 1
    attributes: list[tuple[str, str]] = []
    for name in ATTRIBUTES[:-1]:
        if i < len(words) and words[i] in ATTRIBUTE_VALUES[name]:
            attributes.append((name, words[i]))
            i += 1
    if i >= len(words):
        raise ValueError(f"expression {text!r}: noun phrase without a noun")
    if words[i] in ATTRIBUTE_VALUES["shape"]:
        attributes.append(("shape", words[i]))
    elif words[i] != GENERIC_NOUN:
        raise ValueError(f"expression {text!r}: {words[i]!r} is not a shape or {GENERIC_NOUN!r} "
                         "(adjectives go in the order size, colour, texture)")
    return tuple(attributes), words[i + 1:]


def evaluate(query: Query, facts: SceneFacts) -> set[int]:
    """Ids of the objects the query describes."""
    described = {i for i in facts.ids if facts.matches(i, dict(query.attributes))}
    if query.kind == "appearance":
        return described
    if query.kind == "motion":
        return {i for i in described if query.motion in facts.motion_labels(i)}
    if query.kind == "relation":
        landmarks = {j for j in facts.ids if facts.matches(j, dict(query.landmark or ()))}
        return {i for i in described if any(facts.relation_holds(i, query.relation, j) for j in landmarks)}
    raise ValueError(f"unknown expression kind {query.kind!r}")


def generate_expressions(facts: SceneFacts, rng: np.random.Generator, per_kind: int = 1,
                         visible: set[int] | None = None) -> list[Expression]:
    """Up to `per_kind` expressions of each kind for each object, every one unique in the scene.

    Only objects in `visible` (default: all) are targets or landmarks: an object that is never clearly
    seen cannot be pointed at, however unique its description.
    """
    visible = set(facts.ids) if visible is None else visible
    expressions: list[Expression] = []
    for obj_id in facts.ids:
        if obj_id not in visible:
            continue
        for kind, options in (("appearance", _appearance_options(facts, obj_id)),
                              ("relation", _relation_options(facts, obj_id, rng, visible)),
                              ("motion", _motion_options(facts, obj_id))):
            if not options:
                continue
            picks = rng.choice(len(options), size=min(per_kind, len(options)), replace=False)
            for pick in sorted(int(p) for p in picks):
                query = options[pick]
                expressions.append(Expression(str(len(expressions)), query.text(), obj_id, kind, query))
    return expressions


def _subsets(facts: SceneFacts, obj_id: int) -> list[Attributes]:
    """All attribute subsets of an object (the empty one first), smallest first."""
    own = facts.objects[obj_id].attributes()
    return [tuple((name, own[name]) for name in names)
            for k in range(len(ATTRIBUTES) + 1) for names in itertools.combinations(ATTRIBUTES, k)]


def _unique(query: Query, facts: SceneFacts, obj_id: int) -> bool:
    return evaluate(query, facts) == {obj_id}


def _appearance_options(facts: SceneFacts, obj_id: int) -> list[Query]:
    """Unique descriptions of the smallest size or one attribute more (variety without rambling)."""
    unique = [Query("appearance", s) for s in _subsets(facts, obj_id)[1:]
              if _unique(Query("appearance", s), facts, obj_id)]
    if not unique:
        return []
    shortest = len(unique[0].attributes)
    return [q for q in unique if len(q.attributes) <= shortest + 1]


def _minimal_description(facts: SceneFacts, obj_id: int, rng: np.random.Generator) -> Attributes | None:
    options = _appearance_options(facts, obj_id)
    shortest = [q for q in options if len(q.attributes) == len(options[0].attributes)] if options else []
    return shortest[int(rng.integers(len(shortest)))].attributes if shortest else None


def _needs_more_than_appearance(attributes: Attributes, facts: SceneFacts, obj_id: int) -> bool:
    """The noun phrase alone does not single the target out, so the motion/relation part is needed."""
    return not _unique(Query("appearance", attributes), facts, obj_id)


def _motion_options(facts: SceneFacts, obj_id: int) -> list[Query]:
    """For each motion of the object: the shortest unique phrasing whose noun phrase alone is ambiguous."""
    options = []
    for motion in sorted(facts.motion_labels(obj_id)):
        for subset in _subsets(facts, obj_id):
            query = Query("motion", subset, motion=motion)
            if _needs_more_than_appearance(subset, facts, obj_id) and _unique(query, facts, obj_id):
                options.append(query)
                break
    return options


def _relation_options(facts: SceneFacts, obj_id: int, rng: np.random.Generator,
                      visible: set[int]) -> list[Query]:
    """For each landmark with a unique description and each relation that holds: the shortest phrasing."""
    options = []
    for landmark_id in facts.ids:
        if landmark_id == obj_id or landmark_id not in visible:
            continue
        relations = [r for r in RELATIONS
                     if facts.relation_holds(obj_id, r, landmark_id)]
        if not relations:
            continue
        landmark = _minimal_description(facts, landmark_id, rng)
        if landmark is None:
            continue
        for relation in relations:
            for subset in _subsets(facts, obj_id):
                query = Query("relation", subset, relation=relation, landmark=landmark)
                if _needs_more_than_appearance(subset, facts, obj_id) and _unique(query, facts, obj_id):
                    options.append(query)
                    break
    return options
