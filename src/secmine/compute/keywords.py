"""The ``keywords`` stage as a Ray Data pipeline (``compute.engine: ray``; see :mod:`secmine.compute`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from secmine.compute import cluster, corpus_dataset, sorted_table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.stages.shared import Compute


def match_corpus(
    corpus: str | os.PathLike[str],
    keywords: Sequence[str],
    *,
    word_boundary: bool,
    fields: str | Sequence[str],
    compute: Compute,
) -> pd.DataFrame:
    """The keyword matches of every corpus thread (as :func:`secmine.detect.keywords.match_threads`),
    computed by a Ray Data pipeline of :func:`~secmine.detect.keywords.match_batch` tasks."""
    from secmine.detect.keywords import THREAD_INPUT_COLUMNS, keyword_arrow_schema, match_batch, matches_frame

    with cluster(compute):
        dataset = corpus_dataset(corpus, THREAD_INPUT_COLUMNS).map_batches(
            match_batch, batch_format="pandas", batch_size=compute.batch_size,
            fn_kwargs={"keywords": tuple(keywords), "word_boundary": word_boundary, "fields": fields},
        )
        table = sorted_table(dataset, keyword_arrow_schema())
    return matches_frame(table)
