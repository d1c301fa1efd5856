"""The next coding sheet, ordered by the tagger's uncertainty -- and labelled as not a random sample.

Coding the posts the tagger is least sure about first teaches it most per coded post, but such a
coding is no longer a random sample of the threads: shares computed from it are biased, and PPI
built on it is invalid.  :func:`order_sheet_by_uncertainty` therefore writes the reordered sample
with ``random_sample = False`` on every row and a design record beside it
(``<name>.design.json``: ``{"random_sample": false, "order": ...}``), and puts the warning in the
coding sheet's title; :func:`secmine.taxonomy.ppi.check_coded_sample` refuses any coding checked
against such a sample.  (A coding of the original ``sample.csv`` in which coders followed the
uncertainty order and stopped early is refused too: its coded posts are not the first ones drawn.)

Uncertainty is the mean binary entropy of the tagger's probabilities over the themes and
sub-themes of both taxonomies (1 bit = a coin flip on every one).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from secmine.taxonomy.ppi import DESIGN_SUFFIX, ESTIMATE_LEVELS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

ORDER = "tagger uncertainty (mean binary entropy over themes and sub-themes), most uncertain first"
SHEET_TITLE = "secmine coding sheet - ORDERED BY TAGGER UNCERTAINTY: NOT A RANDOM SAMPLE (excluded from PPI)"


def uncertainty(P: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Mean binary entropy (bits) of the probabilities in ``columns``."""
    p = np.clip(np.asarray(P, dtype=np.float64)[:, columns], 1e-12, 1 - 1e-12)
    return (-(p * np.log2(p) + (1 - p) * np.log2(1 - p))).mean(axis=1)


def order_sheet_by_uncertainty(
    sample_path: str | os.PathLike[str],
    tagged_path: str | os.PathLike[str],
    *,
    output_sample: str | os.PathLike[str] = "data/processed/sample_by_uncertainty.csv",
    output_sheet: str | os.PathLike[str] | None = "data/processed/coding_sheet_by_uncertainty.xlsx",
    corpus_path: str | os.PathLike[str] | None = "data/raw/corpus",
    codebook_path: str | os.PathLike[str] | None = None,
    model_dir: str | os.PathLike[str] | None = "models/taxonomy",
    code_slots: int = 6,
    texts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Reorder the sample stage's ``sample.csv`` by the uncertainty of the tagger's predictions in
    ``tagged_path`` (the tag stage's ``tagged.parquet``), mark it as not a random sample and write
    it with its coding sheet.  ``texts``: ``id, text`` of the threads (default: read from the
    corpus).  Returns the reordered sample."""
    import pandas as pd

    from secmine.analysis.coding import load_codebook, write_coding_sheet
    from secmine.io import write_csv, write_json
    from secmine.taxonomy.labels import LabelSpace
    from secmine.taxonomy.ppi import PPIError, wide_predictions

    sample = pd.read_csv(sample_path, dtype={"post_id": str, "id": str, "source": str}, keep_default_na=False)
    missing = [c for c in ("source", "post_id", "id", "url") if c not in sample.columns]
    if missing:
        raise PPIError(
            f"{sample_path}, row 1: missing column(s) {', '.join(missing)} (a sample stage sample.csv)"
        )
    tagged = pd.read_parquet(tagged_path)
    if model_dir is not None and Path(model_dir).is_dir():
        from secmine.taxonomy.tagger import read_card

        space = LabelSpace.from_json(read_card(model_dir)["codebook"])
    else:
        codebook = load_codebook(codebook_path)
        space = LabelSpace(codebook)
    ids, P = wide_predictions(tagged, space)
    position = {t: r for r, t in enumerate(ids)}
    absent = [t for t in sample["id"] if t not in position]
    if absent:
        raise PPIError(
            f"{sample_path}: thread {absent[0]!r} has no prediction in {tagged_path} "
            f"({len(absent)} missing); run the tag stage on the same classified threads"
        )
    columns = np.sort(np.concatenate([space.positions(level=lv) for lv in ESTIMATE_LEVELS]))
    scores = uncertainty(P[[position[t] for t in sample["id"]]], columns)
    ordered = sample.assign(uncertainty=np.round(scores, 6))
    ordered = ordered.sort_values(
        ["uncertainty", "source", "draw" if "draw" in ordered.columns else "post_id"],
        ascending=[False, True, True],
        kind="stable",
    ).reset_index(drop=True)
    ordered["uncertainty_rank"] = np.arange(1, len(ordered) + 1)
    ordered["random_sample"] = False
    write_csv(ordered, output_sample)
    target = Path(output_sample)
    write_json(
        target.with_name(target.name.removesuffix(".csv") + DESIGN_SUFFIX),
        {
            "random_sample": False,
            "order": ORDER,
            "from": Path(sample_path).as_posix(),
            "tagged": Path(tagged_path).as_posix(),
            "note": "a coding of this sheet is not a random sample of the security threads: "
            "the tag stage excludes "
            "it from the sample shares and from PPI",
        },
    )
    if output_sheet is not None:
        if texts is None:
            from secmine.analysis.data import thread_texts

            if corpus_path is None:
                raise PPIError("the coding sheet needs the thread texts: give a corpus path")
            texts = thread_texts(corpus_path, ordered["id"])
        with_text = ordered.merge(texts, on="id", how="left")
        write_coding_sheet(with_text, space.codebook, output_sheet, code_slots=code_slots, title=SHEET_TITLE)
    return ordered
