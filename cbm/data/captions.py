"""Captions of shapes-world images, written from their concepts.

The tiny CLIP learns from these captions, and the shapes concept bank uses the
one-concept captions as its prompts, so train and test speak the same language.
"""

from __future__ import annotations

import numpy as np

from cbm.data.shapes import CONCEPTS, DIMENSIONS

_DIMS = tuple(DIMENSIONS)
# How often a caption names each dimension; shape is the hardest to learn at 64 px,
# so it is named most often.
_NAME_PROB = {
    "shape": 0.7,
    "colour": 0.5,
    "size": 0.5,
    "position": 0.5,
    "texture": 0.5,
    "background": 0.4,
}


def caption(named: dict[str, str]) -> str:
    """Write the caption that names exactly the given dimension values.

    Parameters
    ----------
    named
        Dimension -> value, e.g. ``{"colour": "red", "shape": "star"}``.

    Returns
    -------
    str
        E.g. ``"a photo of a red star"``.
    """
    adjectives = [named[d] for d in ("size", "colour", "texture") if d in named]
    noun = named.get("shape", "object")
    first = (adjectives or [noun])[0]
    words = ["a photo of", "an" if first[0] in "aeiou" else "a", *adjectives, noun]
    if "position" in named:
        words.append(f"in the {named['position']}")
    if "background" in named:
        words.append(f"on a {named['background']} background")
    return " ".join(words)


def concept_prompt(concept: str) -> str:
    """The caption that names one shapes-world concept alone."""
    offset = 0
    for dim, values in DIMENSIONS.items():
        for i, _ in enumerate(values):
            if CONCEPTS[offset + i] == concept:
                return caption({dim: values[i]})
        offset += len(values)
    raise KeyError(f"{concept!r} is not a shapes-world concept; known: {', '.join(CONCEPTS)}")


def random_captions(
    values: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[list[str], np.ndarray]:
    """One caption per image naming a random subset of its concepts.

    Returns
    -------
    captions, required
        The caption texts and a ``(n, n_concepts)`` binary matrix of the concepts each
        caption names: a caption fits every image that has all of them.
    """
    n = values["shape"].shape[0]
    include = np.stack([rng.random(n) < _NAME_PROB[d] for d in _DIMS], axis=1)
    empty = ~include.any(axis=1)
    include[empty, rng.integers(0, len(_DIMS), size=int(empty.sum()))] = True
    required = np.zeros((n, len(CONCEPTS)), dtype=np.uint8)
    texts = []
    offsets = np.cumsum([0] + [len(v) for v in DIMENSIONS.values()])[:-1]
    for i in range(n):
        named = {}
        for j, dim in enumerate(_DIMS):
            if include[i, j]:
                v = int(values[dim][i])
                named[dim] = DIMENSIONS[dim][v]
                required[i, offsets[j] + v] = 1
        texts.append(caption(named))
    return texts, required
