"""The closed vocabulary of the synthetic world.

Everything a generated expression can say is listed here, so a tiny word-level tokenizer trained on
`vocabulary_words()` covers every expression, and the expression parser can recognise every word.
"""
from __future__ import annotations

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross", "star")

# Saturated, well separated hues on top of a muted background.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (235, 215, 40),
    "green": (40, 170, 60),
    "cyan": (40, 200, 215),
    "blue": (40, 70, 220),
    "purple": (140, 60, 200),
    "pink": (245, 125, 195),
}

SIZES: tuple[str, ...] = ("small", "large")

TEXTURES: tuple[str, ...] = ("plain", "striped", "dotted", "checkered")

# Motion kinds, as realised by a trajectory (see predicates.motion_labels).
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
MOTIONS: tuple[str, ...] = (*DIRECTIONS, "still", "appearing", "leaving")

# Words after the noun phrase that name a motion.
MOTION_PHRASES: dict[str, str] = {
    "left": "moving left",
    "right": "moving right",
    "up": "moving up",
    "down": "moving down",
    "still": "that stays still",
    "appearing": "entering the scene",
    "leaving": "leaving the scene",
}

# Spatial relations between the referred object and a landmark.
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")

# Noun-phrase order: size, colour, texture, shape. Without a shape the noun is "object".
ATTRIBUTES: tuple[str, ...] = ("size", "colour", "texture", "shape")
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "size": SIZES,
    "colour": tuple(COLOURS),
    "texture": TEXTURES,
    "shape": SHAPES,
}
ARTICLE = "the"
GENERIC_NOUN = "object"

EXPRESSION_KINDS: tuple[str, ...] = ("appearance", "relation", "motion")


def vocabulary_words() -> list[str]:
    """Every word any generated expression can contain, sorted (for training a word-level tokenizer)."""
    words = {ARTICLE, GENERIC_NOUN}
    for values in ATTRIBUTE_VALUES.values():
        words.update(values)
    for phrase in (*MOTION_PHRASES.values(), *RELATIONS):
        words.update(phrase.split())
    return sorted(words)
