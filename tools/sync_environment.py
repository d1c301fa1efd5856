"""Write environment.yml (conda) from requirements.txt, so both carry the same pins.

Usage: python tools/sync_environment.py   (also run by `make lock`; a test checks they agree)
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pins(requirements: Path) -> list[str]:
    out = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-")):
            out.append(line)
    return out


def render(pinned: list[str]) -> str:
    lines = [
        "# Conda environment for secmine, generated from requirements.txt by tools/sync_environment.py.",
        "# torch is pinned to 2.13.0 (CPU build where available); create with: conda env create -f environment.yml",
        "name: secmine",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
    ]
    torch = [p for p in pinned if p.lower().startswith("torch==")]
    rest = [p for p in pinned if p not in torch]
    lines += [f"      - {p}" for p in torch + rest]
    lines.append("      - -e .")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    (ROOT / "environment.yml").write_text(render(pins(ROOT / "requirements.txt")), encoding="utf-8")
