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
# # Where should the concepts come from? Sources compared at equal NEC
#
# Same world (shapes, seed 0), same backbone (the shipped tiny CLIP), same head
# (`SparseLinearHead` at each target NEC); only the concept bank changes:
#
# - **hand-written**: the shapes bank (20 concepts, one per value of each dimension);
# - **WordNet**: superclasses and parts of the nine class names, written automatically
#   from WordNet like an LLM would write a list (needs Debian's `wordnet-base`; skipped
#   otherwise). No LLM runs offline here; `cbm concepts generate` is the LLM route;
# - **SAE**: latents of a sparse autoencoder trained on the training embeddings, named
#   from the shipped word list;
# - **random words**: as many words from the shipped word list as the hand-written bank
#   has concepts, embedded by the text tower;
# - **random directions**: random unit vectors in embedding space (20 of them).
#
# A source is only worth its names if it beats the random banks at the same NEC.

# %% tags=["parameters"]
import os

N_TRAIN = 2000  # training images
N_TEST = 1000  # test images
BUDGETS = (2.0, 3.0, 5.0)  # target NECs
SEED = 0
SAE_EPOCHS = 40
FIGURE_DIR = os.environ.get("CBM_FIGURE_DIR")

# %%
from threadpoolctl import threadpool_limits  # noqa: E402

from cbm.backbones import EmbeddingCache, OpenCLIPBackbone, embed_images  # noqa: E402
from cbm.concepts import ConceptBank  # noqa: E402
from cbm.concepts.naming import Vocabulary, name_with_backbone  # noqa: E402
from cbm.concepts.sources import find_wordnet, wordnet_bank  # noqa: E402
from cbm.data import ShapesWorld  # noqa: E402
from cbm.exceptions import CBMError  # noqa: E402
from cbm.heads import SparseLinearHead  # noqa: E402
from cbm.heads.control import random_control  # noqa: E402
from cbm.metrics.core import accuracy  # noqa: E402
from cbm.model import ConceptBottleneckModel  # noqa: E402
from cbm.sae_pipeline import shapes_sae  # noqa: E402
from cbm.scores.sae import sae_bottleneck  # noqa: E402

threadpool_limits(limits=1)
world = ShapesWorld(seed=SEED)
train, test = world.sample(N_TRAIN, "train"), world.sample(N_TEST, "test")
backbone = OpenCLIPBackbone(device="cpu")
cache = EmbeddingCache()
emb_train = embed_images(backbone, train.images, cache)
emb_test = embed_images(backbone, test.images, cache)
identity = backbone.identity()
hand = ConceptBank.load("shapes")
words = Vocabulary.shipped()

# %% [markdown]
# ## The banks

# %%
banks: dict[str, ConceptBank] = {"hand-written (shapes bank)": hand}
try:
    find_wordnet()
    banks["WordNet (class names)"] = wordnet_bank(world.class_names)
except CBMError as err:
    print(f"WordNet source skipped: {err}")
sae = shapes_sae(device="cpu", epochs=SAE_EPOCHS, progress=False).fit(emb_train)
sae_names = name_with_backbone(sae.decoder_directions_, backbone, words)
for name, bank in banks.items():
    print(f"{name}: {len(bank)} concepts, e.g. {', '.join(bank.concepts[:6])}")
print(f"SAE: {len(sae_names.latents)} latents, e.g. {', '.join(n[0] for n in sae_names.names[:6])}")


# %%
text_embeddings = {name: backbone.encode_texts(bank.prompts) for name, bank in banks.items()}
random_sources = {  # name -> extra arguments of random_control
    "random words": {"vocabulary": words.entries, "encode_texts": backbone.encode_texts},
    "random directions": {},
}
rows = []
for budget in BUDGETS:
    fitted = {
        name: ConceptBottleneckModel(
            bank,
            text_embeddings[name],
            identity,
            world.class_names,
            SparseLinearHead(target_nec=budget),
        ).fit(emb_train, train.labels)
        for name, bank in banks.items()
    }
    fitted["SAE latents (word names)"] = sae_bottleneck(
        sae, sae_names, identity, world.class_names, SparseLinearHead(target_nec=budget)
    ).fit(emb_train, train.labels)
    for name, extra in random_sources.items():
        fitted[name] = random_control(
            identity,
            len(hand),
            emb_train,
            train.labels,
            emb_test,
            test.labels,
            world.class_names,
            budget,
            seed=SEED,
            **extra,
        )
    for name, model in fitted.items():
        rows.append(
            {
                "source": name,
                "target_nec": budget,
                "nec": model.nec,
                "n_concepts": len(model.bank),
                "accuracy": accuracy(test.labels, model.predict(emb_test)),
            }
        )

print(f"{'source':<28}" + "".join(f"{'NEC ' + format(b, 'g'):>12}" for b in BUDGETS))
for source in dict.fromkeys(r["source"] for r in rows):
    cells = [r for r in rows if r["source"] == source]
    print(f"{source:<28}" + "".join(f"{r['accuracy']:>11.1%} " for r in cells))
results = rows

# %% [markdown]
# ## Accuracy against the concept budget

# %%
if FIGURE_DIR:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.6, 4.0))
    for source in dict.fromkeys(r["source"] for r in rows):
        cells = [r for r in rows if r["source"] == source]
        style = "--" if source.startswith("random") else "-"
        ax.plot(
            [r["nec"] for r in cells],
            [r["accuracy"] for r in cells],
            style,
            marker="o",
            label=f"{source} ({cells[0]['n_concepts']})",
        )
    ax.set_xlabel("NEC (non-zero weights per class)")
    ax.set_ylabel("test accuracy")
    ax.set_title("shapes world, tiny CLIP: concept sources at equal NEC", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(os.path.join(FIGURE_DIR, "concept_sources.png"), dpi=100)
    plt.close(fig)
