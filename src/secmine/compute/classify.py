"""The ``classify`` stage's scoring as a Ray Data pipeline of model actors (``compute.engine: ray``; see
:mod:`secmine.compute`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from secmine.compute import cluster, corpus_dataset, sorted_table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

    from secmine.stages.shared import Compute

#: The corpus columns a classify batch needs (metadata of the output, and the text's parts).
CLASSIFY_COLUMNS: tuple[str, ...] = ("id", "platform", "kind", "repo", "number", "created_at", "title", "body",
                                     "comments")


class ThreadScorer:
    """A Ray actor's model: loaded once, then scores each batch of threads it is given
    (:func:`secmine.detect.predict.score_threads`), reusing or writing its checkpoint."""

    def __init__(self, model_dir: str, *, engine: str, num_threads: int, exact: bool, max_chars: int,
                 checkpoint_dir: str | None, model_key: str, batch_size: int) -> None:
        from secmine.detect.predict import load_classifier

        self.model, self.card, self.engine = load_classifier(model_dir, engine=engine, num_threads=num_threads,
                                                             exact=exact)
        self.max_chars = max_chars
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.model_key = model_key
        self.batch_size = max(1, batch_size)

    def __call__(self, block: pd.DataFrame) -> pa.Table:
        """Score one block (a file's rows, or a fixed piece of it) in batches of ``batch_size`` rows in
        id order: the batches, and so their checkpoints, are the same on every run and cluster."""
        import pyarrow as pa

        from secmine.detect.predict import score_threads

        block = block.sort_values("id", kind="stable").reset_index(drop=True)
        tables = [
            score_threads(self.model, block.iloc[start:start + self.batch_size], max_chars=self.max_chars,
                          checkpoint_dir=self.checkpoint_dir, model_key=self.model_key,
                          extra_key=f"engine={self.engine}")
            for start in range(0, len(block), self.batch_size)
        ]
        return pa.concat_tables(tables)


def score_corpus(
    model_dir: str | os.PathLike[str],
    corpus: str | os.PathLike[str],
    *,
    engine: str,
    num_threads: int,
    exact: bool,
    max_chars: int,
    compute: Compute,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    model_key: str = "",
) -> pa.Table:
    """Every corpus thread's metadata and raw model score (:data:`secmine.detect.predict.SCORED_COLUMNS`),
    sorted by id, scored by a pool of ``compute.actors`` model actors (a GPU each when the cluster has
    GPUs and ``compute.gpus_per_actor`` > 0).  ``engine`` is the resolved engine.  Batches already in
    ``checkpoint_dir`` are read back, not scored again; afterwards the checkpoints of batches that
    are no part of this corpus are removed."""
    import ray

    from secmine.detect.predict import SCORED_COLUMNS, prune_checkpoints, scored_arrow_schema

    with cluster(compute):
        resources = ray.cluster_resources()
        actors = max(1, compute.actors)
        gpus = compute.gpus_per_actor if resources.get("GPU", 0) > 0 and compute.gpus_per_actor > 0 else 0
        # Ray's CPU count is a reservation, not a limit: the actors together reserve at most all CPUs
        # but one, so that the tasks that list and read the corpus always find a CPU (else a pool as
        # large as the cluster waits for reads that never start).
        cpus = max(0.01, min(1.0, (float(resources.get("CPU", 1)) - 1) / actors))
        dataset = corpus_dataset(corpus, CLASSIFY_COLUMNS).map_batches(
            ThreadScorer, batch_format="pandas", batch_size=None, concurrency=actors,
            num_cpus=round(cpus, 2), num_gpus=gpus or None,
            fn_constructor_kwargs={"model_dir": str(Path(model_dir).resolve()), "engine": engine,
                                   "num_threads": num_threads, "exact": exact, "max_chars": max_chars,
                                   "checkpoint_dir": str(Path(checkpoint_dir).resolve()) if checkpoint_dir else None,
                                   "model_key": model_key, "batch_size": compute.batch_size},
        )
        table = sorted_table(dataset, scored_arrow_schema())
    if checkpoint_dir is not None:
        prune_checkpoints(checkpoint_dir, table.column("checkpoint").to_pylist())
    return table.select(list(SCORED_COLUMNS))
