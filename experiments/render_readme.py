"""Copy the result tables of ``experiments/results/`` into README.md and the research log.

README.md and ``experiments/README.md`` (the research log: every search behind the recipe)
mark each generated block with ``<!-- BEGIN results/NAME.md -->`` and
``<!-- END results/NAME.md -->``; everything between the markers is replaced with the current
content of ``experiments/results/NAME.md``, headings demoted by three levels so that an
included file nests under a ``###`` section. Rerun it after a
benchmark script has rewritten its table::

    python experiments/render_readme.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r"(<!-- BEGIN (?P<name>results/[\w./-]+) -->\n)(?P<body>.*?)(<!-- END (?P=name) -->)", re.S
)


def demote(markdown: str) -> str:
    """``# Title`` -> ``#### Title`` (and so on), so an included file nests under its section."""
    return re.sub(r"^(#+) ", r"###\1 ", markdown, flags=re.M)


def render(readme: str, results: Path) -> str:
    def include(match: re.Match[str]) -> str:
        path = results.parent / match["name"]
        if not path.is_file():
            raise FileNotFoundError(f"README includes {match['name']}, which does not exist")
        body = demote(path.read_text().strip()) + "\n"
        return f"{match[1]}{body}{match[4]}"

    return BLOCK.sub(include, readme)


#: the documents with generated blocks, relative to the repository root
DOCUMENTS = ("README.md", "experiments/README.md")


def main() -> int:
    for name in DOCUMENTS:
        document = ROOT / name
        text = document.read_text()
        rendered = render(text, ROOT / "experiments" / "results")
        if rendered != text:
            document.write_text(rendered)
            print(f"{name} updated")
        else:
            print(f"{name} already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
