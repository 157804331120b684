"""Random-concept control: the same bottleneck on random concepts, at the same NEC.

A bank of random directions (or the text embeddings of random words) of the same size,
fitted with the same head settings, shows how much accuracy *any* set of projections of
the embedding gives. A concept bank's explanation only means something above it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import clone

from cbm.concepts.bank import ConceptBank
from cbm.exceptions import ConfigurationError
from cbm.heads.sparse import SparseLinearHead
from cbm.metrics.core import accuracy
from cbm.model import ConceptBottleneckModel
from cbm.scores.cosine import random_directions


def random_control(
    backbone_identity: dict[str, Any],
    n_concepts: int,
    emb_train: np.ndarray,
    y_train: np.ndarray,
    emb_test: np.ndarray,
    y_test: np.ndarray,
    class_names: tuple[str, ...],
    target_nec: float | None,
    seed: int = 0,
    *,
    head: SparseLinearHead | None = None,
    vocabulary: Sequence[str] | None = None,
    encode_texts: Callable[[list[str]], np.ndarray] | None = None,
) -> ConceptBottleneckModel:
    """The same bottleneck on ``n_concepts`` random concepts, fitted the same way.

    Parameters
    ----------
    backbone_identity, class_names
        As for :class:`ConceptBottleneckModel`.
    n_concepts
        Size of the random bank (match the real bank's).
    emb_train, y_train, emb_test, y_test
        Image embeddings and labels; the test accuracy lands in ``metrics``.
    target_nec
        NEC of the control head (match the real model's).
    seed
        Draw of directions or words.
    head
        The real model's head: its hyper-parameters are reused (NEC-matched by
        ``target_nec``), so the only difference is the concepts.
    vocabulary, encode_texts
        Give both for a bank of random *words*: ``n_concepts`` words drawn from
        ``vocabulary`` and embedded with the backbone's text tower. Otherwise random
        unit directions in embedding space.

    Returns
    -------
    ConceptBottleneckModel
        The fitted control, with ``metrics["test_accuracy"]`` and ``metrics["nec"]``.
    """
    dim = emb_train.shape[1]
    rng = np.random.default_rng(seed)
    if (vocabulary is None) != (encode_texts is None):
        raise ConfigurationError(
            "a random-words control needs both vocabulary and encode_texts; "
            "give neither for random directions"
        )
    if vocabulary is not None and encode_texts is not None:
        words = sorted(set(vocabulary))
        if len(words) < n_concepts:
            raise ConfigurationError(
                f"the vocabulary has {len(words)} distinct words, fewer than the "
                f"{n_concepts} random concepts wanted"
            )
        chosen = [words[i] for i in rng.choice(len(words), n_concepts, replace=False)]
        bank = ConceptBank(
            name="random-words",
            concepts=tuple(chosen),
            provenance={"source": "random words from a vocabulary", "seed": seed},
        )
        directions = np.asarray(encode_texts(list(bank.prompts)), np.float32)
    else:
        bank = ConceptBank(
            name="random-directions",
            concepts=tuple(f"random direction {i}" for i in range(n_concepts)),
            provenance={"source": "random unit vectors in embedding space", "seed": seed},
        )
        directions = random_directions(n_concepts, dim, seed=seed)
    control_head = SparseLinearHead() if head is None else clone(head)
    control_head.set_params(target_nec=target_nec)
    model = ConceptBottleneckModel(bank, directions, backbone_identity, class_names, control_head)
    model.fit(emb_train, y_train)
    model.metrics["test_accuracy"] = accuracy(y_test, model.predict(emb_test))
    model.metrics["nec"] = model.nec
    return model
