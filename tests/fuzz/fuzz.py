"""Run a fuzz target under atheris (extra ``[fuzz]``) for a bounded time.

    python tests/fuzz/fuzz.py parse -max_total_time=30
    python tests/fuzz/fuzz.py model_dir -max_total_time=30 -rss_limit_mb=4096

Arguments after the target name go to libFuzzer. A crash prints the input and the
traceback, writes ``crash-*`` into the working directory, and exits non-zero: add the
input to ``REGRESSIONS`` in ``test_fuzz.py`` with the fix.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["cbm"]):
    import targets  # noqa: E402  (imports cbm, instrumented for coverage feedback)


def main() -> None:
    name, args = sys.argv[1], [sys.argv[0], *sys.argv[2:]]
    if name == "parse":
        target = targets.parse_target
    elif name == "model_dir":
        target = targets.ModelDirTarget(Path(tempfile.mkdtemp(prefix="cbm-fuzz-")))
    else:
        raise SystemExit(f"unknown target {name!r}: parse or model_dir")
    corpus = Path(tempfile.mkdtemp(prefix=f"cbm-fuzz-{name}-corpus-"))
    for i, seed in enumerate(targets.SEEDS.get(name, [])):
        (corpus / f"seed-{i}").write_bytes(seed)
    atheris.Setup([*args, str(corpus)], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
