# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Auditing a concept bottleneck on the shapes world
#
# The shapes world knows the truth: every image's concepts and where they are. This
# notebook fits a concept bottleneck (shipped tiny CLIP -> shapes concept bank ->
# NEC-targeted sparse head) and audits it with `cbm.metrics` through `cbm.audit`:
#
# - task: accuracy, balanced accuracy, calibration, NEC and effective concepts per decision,
#   accuracy against NEC beside a random bank of the same size;
# - concepts: AUROC / average precision against ground truth, existence of the concepts a
#   prediction claims, importance against true class-level frequency, dead/duplicate concepts;
# - localisation: concept activation maps from per-location embeddings, scored by the
#   pointing game and mask IoU;
# - information: how much label information the scores and the top-k concepts keep,
#   relative to the embedding (cross-fitted lower bound with error bars);
# - leakage: soft scores against binarised scores and a random bank, same head.
#
# Run it as a script or open it with jupytext. With `CBM_FIGURE_DIR` set, the figures
# are written there (the test suite executes this notebook that way).

# %% tags=["parameters"]
import os

N_TRAIN = 2000  # training images
N_TEST = 1000  # test images
N_MAPS = 200  # test images with activation maps
UPSCALE = 1  # >1 enlarges images before the tower for a finer (but off-scale) grid
TARGET_NEC = 5.0  # concepts per class the head may use
SEED = 0
TOP_K = (1, 3, 5)  # top-concept subsets in the information audit
MI_CS = (1e-4, 0.1, 1.0, 10.0)  # regularisation grid of the information estimator
FIGURE_DIR = os.environ.get("CBM_FIGURE_DIR", "")

# %%
import tempfile
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from cbm.audit import AuditData, run_audit
from cbm.audit.markdown import to_markdown
from cbm.audit.plots import make_figures
from cbm.backbones import OpenCLIPBackbone
from cbm.backbones.dense import dense_image_embeddings
from cbm.concepts.bank import ConceptBank
from cbm.data.shapes import ShapesWorld
from cbm.heads.sparse import SparseLinearHead
from cbm.model import ConceptBottleneckModel

torch.set_num_threads(1)

# %% [markdown]
# ## Data, backbone and model

# %%
world = ShapesWorld(seed=SEED)
train = world.sample(N_TRAIN, "train")
test = world.sample(N_TEST, "test")
backbone = OpenCLIPBackbone(device="cpu")
with threadpool_limits(limits=1):
    emb_train = backbone.encode_images(train.images)
    emb_test = backbone.encode_images(test.images)
    bank = ConceptBank.load("shapes")
    model = ConceptBottleneckModel(
        bank,
        backbone.encode_texts(bank.prompts),
        backbone.identity(),
        world.class_names,
        SparseLinearHead(target_nec=TARGET_NEC),
    ).fit(emb_train, train.labels)
print(f"{backbone.backbone_id}: {len(bank)} concepts, NEC {model.nec:.2f}")

# %% [markdown]
# Activation maps need per-location embeddings and the true masks of some test images
# (`sample(..., masks=True)` draws its own stream of the test split).

# %%
mapped = world.sample(N_MAPS, "test", masks=True)
with threadpool_limits(limits=1):
    dense, pooled = dense_image_embeddings(backbone, mapped.images, upscale=UPSCALE)
data = AuditData(
    train_embeddings=emb_train,
    train_labels=train.labels,
    test_embeddings=emb_test,
    test_labels=test.labels,
    test_concepts=test.concepts,
    dense=dense,
    masks=mapped.masks,
    images=mapped.images,
    description=f"shapes world (seed {SEED}), {N_TRAIN} train / {N_TEST} test images",
)

# %% [markdown]
# ## The audit

# %%
report = run_audit(model, data, seed=SEED, top_k=TOP_K, mi_Cs=MI_CS)
for name, value in report.task.items():
    print(f"{name:>30}: {value:.3f}")

# %% [markdown]
# Concepts the predictions claim, and whether they are really there:

# %%
print({f"top-{k}": round(v, 3) for k, v in (report.existence or {}).items()})
assert report.concept_quality is not None
print(report.concept_quality.round(3).to_string(index=False))

# %% [markdown]
# Localisation per concept (background concepts cover most of the image, so their
# pointing game is easy; shape and colour are the informative rows):

# %%
assert report.localisation is not None
print(report.localisation.round(3).to_string(index=False))

# %% [markdown]
# Label information and leakage:

# %%
assert report.information is not None and report.leakage is not None
print(report.information.round(3).to_string(index=False))
print(report.leakage.round(3).to_string(index=False))

# %% [markdown]
# ## Figures and the Markdown report

# %%
figure_dir = Path(FIGURE_DIR) if FIGURE_DIR else Path(tempfile.mkdtemp(prefix="cbm-audit-"))
figures = make_figures(report, figure_dir)
markdown = to_markdown(report, figures, base=figure_dir)
(figure_dir / "report.md").write_text(markdown, encoding="utf-8")
print(f"wrote {len(figures)} figures and report.md to {figure_dir}")
try:  # show them inline when running in Jupyter
    from IPython import get_ipython
    from IPython.display import Image, display

    if get_ipython() is not None:
        for path in figures.values():
            display(Image(filename=str(path)))
except ImportError:
    pass
print(f"mean effective concepts per decision: {np.mean(report.effective_concepts):.2f}")
