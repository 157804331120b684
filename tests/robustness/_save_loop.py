"""Child process for the kill-mid-write test: saves models in a loop until killed."""

import sys

import numpy as np

from cbm.concepts import ConceptBank
from cbm.heads import SparseLinearHead
from cbm.model import ConceptBottleneckModel

out = sys.argv[1]
rng = np.random.default_rng(0)
k, d = 2000, 512  # large enough that each save takes a while
C = rng.standard_normal((k, d)).astype(np.float32)
X = rng.standard_normal((60, d)).astype(np.float32)
y = np.arange(60) % 3
bank = ConceptBank("big", tuple(f"c{i}" for i in range(k)))
backbone = {"backbone_id": "t", "weights_id": "sha256:0", "embed_dim": d}
model = ConceptBottleneckModel(bank, C, backbone, ("a", "b", "c"), SparseLinearHead(None, C=0.5))
model.fit(X, y)
i = 0
while True:
    model.metrics = {"save": i}
    model.scorer.mean_ = model.scorer.mean_ + 1.0  # every save differs from the last
    model.save(out)
    print(i, flush=True)
    i += 1
