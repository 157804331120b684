# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Test-time interventions on the shapes world
#
# A concept bottleneck lets an expert correct a concept and watch the prediction
# follow. Which concepts to ask about matters (Shin et al., ICML 2023): this notebook
# trains a CBM on the shapes world with the shipped tiny CLIP, makes the test split
# harder with deployment noise, and draws task error against the number of concepts
# corrected with their true values, for every selection strategy. A second part plants
# a shortcut (a background that goes with one class in training only) and looks for it
# among the head's weights.

# %% tags=["parameters"]
import os

N_TRAIN = int(os.environ.get("CBM_NB_N_TRAIN", 2000))
N_TEST = int(os.environ.get("CBM_NB_N_TEST", 1500))
TRAIN_NOISE = 6.0  # the world's default pixel noise
TEST_NOISE = float(os.environ.get("CBM_NB_TEST_NOISE", 25.0))  # deployment shift
TARGET_NEC = float(os.environ.get("CBM_NB_NEC", 5.0))
SEED = 0
SHORTCUT_CLASS = "tile"
SHORTCUT_BACKGROUND = "dark"
FIGURE_DIR = os.environ.get("CBM_FIGURE_DIR")

# %%
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from cbm.backbones import EmbeddingCache, OpenCLIPBackbone, embed_images  # noqa: E402
from cbm.concepts import ConceptBank  # noqa: E402
from cbm.data import ShapesWorld, Shortcut  # noqa: E402
from cbm.heads import SparseLinearHead  # noqa: E402
from cbm.interventions import (  # noqa: E402
    STRATEGIES,
    ConceptCalibration,
    Edit,
    Intervener,
    InterventionValues,
    apply_edits,
    curves_table,
    edit_concepts,
    intervention_curves,
)
from cbm.model import ConceptBottleneckModel  # noqa: E402
from cbm.pipeline import random_control  # noqa: E402

threadpool_limits(limits=1)
backbone = OpenCLIPBackbone(device="cpu")
cache = EmbeddingCache()
bank = ConceptBank.load("shapes")
text = backbone.encode_texts(bank.prompts)


def fit(world: ShapesWorld, n: int) -> tuple[ConceptBottleneckModel, object, np.ndarray]:
    train = world.sample(n, "train")
    emb = embed_images(backbone, train.images, cache)
    model = ConceptBottleneckModel(
        bank, text, backbone.identity(), world.class_names, SparseLinearHead(target_nec=TARGET_NEC)
    ).fit(emb, train.labels)
    return model, train, emb


world = ShapesWorld(seed=SEED, noise=TRAIN_NOISE)
model, train, emb_train = fit(world, N_TRAIN)
test = ShapesWorld(seed=SEED, noise=TEST_NOISE).sample(N_TEST, "test")
emb_test = embed_images(backbone, test.images, cache)
accuracy = float((model.predict(emb_test) == test.labels).mean())
control = random_control(
    backbone.identity(),
    len(bank),
    emb_train,
    train.labels,
    emb_test,
    test.labels,
    world.class_names,
    TARGET_NEC,
    seed=SEED,
)
print(
    f"shapes world, tiny CLIP, NEC {model.nec:.2f}: test accuracy (pixel noise {TEST_NOISE:g}) "
    f"{accuracy:.1%}; {len(bank)} random directions at NEC {control.nec:.2f}: "
    f"{control.metrics['test_accuracy']:.1%}"
)

# %% [markdown]
# ## Intervention curves
#
# "Present"/"absent" are the median training scores of images where the concept truly
# is present/absent; an intervention writes the true one. The criteria use concept
# probabilities from a per-concept logistic fit of the training ground truth on the
# score (`ConceptCalibration.from_ground_truth`); they never see the test truth.

# %%
train_scores = model.concept_scores(emb_train)
test_scores = model.concept_scores(emb_test)
values = InterventionValues.from_ground_truth(train_scores, train.concepts)
calibration = ConceptCalibration.from_ground_truth(train_scores, train.concepts)
targets = values.targets(test.concepts)
curves, batch_curves = {}, {}
for granularity in ("concept", "group"):
    iv = Intervener(model, values, calibration, granularity=granularity)
    curves[granularity] = intervention_curves(iv, test_scores, test.labels, targets)
    batch_curves[granularity] = intervention_curves(
        iv, test_scores, test.labels, targets, budget="batch"
    )
    print(f"{granularity}-level interventions")
    print(f"  {'strategy':<8}{'AUC':>8}{'steps to halve':>16}{'AUC, batch budget':>19}")
    batch_rows = curves_table(batch_curves[granularity])
    for row, batch_row in zip(curves_table(curves[granularity]), batch_rows, strict=True):
        print(
            f"  {row['strategy']:<8}{row['auc']:>8.4f}{row['steps_to_reduce']!s:>16}"
            f"{batch_row['auc']:>19.4f}"
        )

# %% [markdown]
# With a batch budget the batch shares the interventions (point t: t x N_TEST answers
# spent where the strategy ranks the (image, unit) pairs highest). The done-when
# criteria of the issue, measured:

# %%
results = {}
for granularity, cs in curves.items():
    rand = cs["rand"]
    informed = {k: c for k, c in cs.items() if k != "rand"}
    rand_half = rand.steps_to_reduce(0.5)
    best_name = min(informed, key=lambda k: informed[k].steps_to_reduce(0.5) or 10**9)
    best_half = informed[best_name].steps_to_reduce(0.5)
    below = [k for k, c in informed.items() if c.auc < rand.auc]
    results[granularity] = {
        "initial_error": float(rand.errors[0]),
        "error_all_true": float(rand.errors[-1]),
        "all_below_rand": len(below) == len(informed),
        "below_rand": below,
        "rand_steps_to_halve": rand_half,
        "best": best_name,
        "best_steps_to_halve": best_half,
        "auc": {k: round(c.auc, 4) for k, c in cs.items()},
        "batch_below_rand": [
            k
            for k, c in batch_curves[granularity].items()
            if k != "rand" and c.auc < batch_curves[granularity]["rand"].auc
        ],
    }
    print(granularity, results[granularity])

# %%
if FIGURE_DIR:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=90)
    styles = dict(zip(STRATEGIES, ["k--", "C0-", "C1:", "C2-", "C3-", "C4-"], strict=True))
    for ax, (granularity, cs) in zip(axes, curves.items(), strict=True):
        for name, c in cs.items():
            ax.plot(
                c.steps,
                100 * c.errors,
                styles[name],
                lw=1.6,
                label=f"{name.upper()} (AUC {c.auc:.3f})",
            )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(f"{granularity}s intervened per image")
        ax.set_title(f"{granularity}-level, true values")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("task error (%)")
    fig.suptitle(
        f"shapes world, tiny CLIP, NEC {model.nec:.0f}, test noise {TEST_NOISE:g}, {N_TEST} images",
        fontsize=9,
    )
    fig.tight_layout()
    os.makedirs(FIGURE_DIR, exist_ok=True)
    fig.savefig(os.path.join(FIGURE_DIR, "intervention_curves.png"))
    plt.close(fig)

# %% [markdown]
# ## A planted shortcut
#
# In training, 95% of the `tile` images get a dark background and other classes
# avoid it; the test split keeps backgrounds independent of the class. The head picks
# the shortcut up as one of its weights. Removing the concept from every test image
# (an edit of copies of the scores; the model itself is untouched, and the global edit
# of the head lives in `cbm.heads.edits`) shows what the shortcut costs.

# %%
sc_world = ShapesWorld(
    seed=SEED, noise=TRAIN_NOISE, shortcut=Shortcut(SHORTCUT_CLASS, SHORTCUT_BACKGROUND, 0.95)
)
sc_model, sc_train, sc_emb_train = fit(sc_world, N_TRAIN)
shortcut_concept = f"{SHORTCUT_BACKGROUND} background"
sc_test = sc_world.sample(N_TEST, "test")
sc_scores = sc_model.concept_scores(embed_images(backbone, sc_test.images, cache))
weights = dict(sc_model.concepts_per_class()[SHORTCUT_CLASS])
rank = list(weights).index(shortcut_concept) + 1 if shortcut_concept in weights else None
print(f"{SHORTCUT_CLASS!r} rests on: " + ", ".join(f"{c} {w:+.2f}" for c, w in weights.items()))
print(f"the shortcut concept {shortcut_concept!r} is weight #{rank} of {len(weights)}")
sc_values = InterventionValues.from_percentiles(
    sc_model.concept_scores(embed_images(backbone, sc_train.images, cache))
)
edited = apply_edits(sc_scores, [Edit(shortcut_concept, "remove")], sc_values, bank.concepts)
before = float((sc_model.proba_from_scores(sc_scores).argmax(1) == sc_test.labels).mean())
after = float((sc_model.proba_from_scores(edited).argmax(1) == sc_test.labels).mean())
cls = sc_world.class_names.index(SHORTCUT_CLASS)
in_cls = sc_test.labels == cls
recall_before = float((sc_model.proba_from_scores(sc_scores).argmax(1)[in_cls] == cls).mean())
recall_after = float((sc_model.proba_from_scores(edited).argmax(1)[in_cls] == cls).mean())
shortcut = {
    "rank": rank,
    "accuracy_before": before,
    "accuracy_after_remove": after,
    "recall_before": recall_before,
    "recall_after_remove": recall_after,
}
print(shortcut)

# %% [markdown]
# ## Fixing the model: a global edit
#
# Editing test images fixes one case at a time. `edit_concepts` fixes the model: it
# removes the shortcut concept from the head for every class and re-fits the other
# weights on the same training split, returning a new model (the original is unchanged).
# It is measured on the test split, where the background no longer goes with the class.

# %%
fixed = edit_concepts(sc_model, remove=[shortcut_concept], refit=(sc_emb_train, sc_train.labels))
fixed_pred = fixed.proba_from_scores(sc_scores).argmax(1)
shortcut["accuracy_after_global_edit"] = float((fixed_pred == sc_test.labels).mean())
shortcut["recall_after_global_edit"] = float((fixed_pred[in_cls] == cls).mean())
shortcut["original_model_unchanged"] = bool(
    sc_model.concepts_per_class()[SHORTCUT_CLASS] == list(weights.items())
)
print(
    f"test accuracy {before:.1%} -> {shortcut['accuracy_after_global_edit']:.1%} after removing "
    f"{shortcut_concept!r} from the head; {SHORTCUT_CLASS} recall {recall_before:.1%} -> "
    f"{shortcut['recall_after_global_edit']:.1%}"
)
