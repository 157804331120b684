"""cbm workbench: inspect a concept bottleneck model's decisions and correct them.

Run with ``cbm app [MODEL_DIR]`` (or ``streamlit run app/workbench.py``). The model
folder and the folder of models to list come from the environment variables
``CBM_APP_MODEL`` and ``CBM_APP_MODELS_ROOT`` that ``cbm app`` sets.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

# Streamlit puts this folder on sys.path; the repository root makes a source checkout's
# ``cbm`` importable without installing it.
_ROOT = Path(__file__).resolve().parent.parent
if (_ROOT / "cbm" / "__init__.py").is_file() and str(_ROOT) not in sys.path:
    sys.path.append(str(_ROOT))

import page_global  # noqa: E402
import page_image  # noqa: E402
import page_intervene  # noqa: E402
import page_model  # noqa: E402
import workbench_ui as ui  # noqa: E402

PAGES = {
    "Model": page_model.render,
    "Image view": page_image.render,
    "Intervene": page_intervene.render,
    "Global view": page_global.render,
}


def main() -> None:
    st.set_page_config(page_title="cbm workbench", layout="wide")
    if "model_dir" not in st.session_state and os.environ.get("CBM_APP_MODEL"):
        ui.open_model(os.environ["CBM_APP_MODEL"])
    st.session_state.setdefault(
        "models_root", os.environ.get("CBM_APP_MODELS_ROOT", str(Path.cwd()))
    )
    with st.sidebar:
        st.title("cbm workbench")
        page = st.radio("Page", list(PAGES), key="page")
        path = ui.model_dir()
        st.caption(f"Model: `{path}`" if path else "No model open")
    PAGES[page]()


main()
