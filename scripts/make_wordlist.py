"""Rebuild cbm/concepts/vocabularies/english_words.txt from Debian's wamerican-small.

    apt-get download wamerican-small && dpkg-deb -x wamerican-small_*.deb deb
    python scripts/make_wordlist.py deb/usr/share/dict/american-english-small

Keeps lower-case alphabetic words of 3+ letters and drops plurals, -ing and -ly forms
whose base word is listed, which keeps the file under 300 KB.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

OUT = Path(__file__).parent.parent / "cbm" / "concepts" / "vocabularies" / "english_words.txt"


def main(source: str) -> None:
    text = Path(source).read_text(encoding="utf-8")
    words = [w for w in text.split() if re.fullmatch(r"[a-z]+", w) and len(w) >= 2]
    known = set(words)

    def derived(w: str) -> bool:
        plural = w.endswith("s") and (w[:-1] in known or (w.endswith("es") and w[:-2] in known))
        gerund = w.endswith("ing") and (w[:-3] in known or w[:-3] + "e" in known)
        adverb = w.endswith("ly") and w[:-2] in known
        return plural or gerund or adverb

    keep = [w for w in words if len(w) >= 3 and not derived(w)]
    OUT.write_text("\n".join(keep) + "\n", encoding="utf-8")
    print(f"{len(keep)} words -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
