"""Scale-out on Ray: the ``keywords`` and ``classify`` stages as Ray Data pipelines (``compute.engine: ray``).

Everything Ray lives in this package (:mod:`secmine.compute.keywords`, :mod:`secmine.compute.classify`;
here the connection and the corpus), and ``ray`` is imported only when a stage runs with ``engine: ray``.
Each pipeline reads the corpus's Parquet files (:func:`secmine.collect.corpus.part_files`, so
both the one-file-per-platform and the deeper partitioned layouts work) with
``ray.data.read_parquet`` and maps every batch through the same function the local run uses:

* ``keywords``: :func:`secmine.detect.keywords.match_batch` in stateless tasks;
* ``classify``: an actor pool (``compute.actors`` actors, ``concurrency``), each actor loading the
  model once (:func:`secmine.detect.predict.load_classifier`) and scoring each batch with
  :func:`secmine.detect.predict.score_threads` -- the text preparation and the model call of the
  local run; one GPU per actor (``compute.gpus_per_actor``) when the cluster has GPUs.

The results come back to the driver, are sorted by id there (:func:`sorted_table`) and are written
by the same code as a local run, so the outputs are the same bytes (a text's score does not depend on the batch it is
scored in with the exact fp32 engine: docs/determinism.md).  Each scored batch is checkpointed in
the stage's checkpoint folder under a fingerprint of the model and the batch's ids and texts, so a
killed run scores only what it had not finished.  docs/ray.md says how to run it on a cluster.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import ray.data

    from secmine.stages.shared import Compute

LOCAL_HOST = "127.0.0.1"


@contextlib.contextmanager
def cluster(compute: Compute) -> Iterator[None]:
    """Connected to the Ray cluster ``compute.ray_address`` names for the ``with`` block.

    ``""``: a cluster of this machine started for the run on 127.0.0.1 (``compute.local_cpus`` CPUs,
    0 = every core; no dashboard) and stopped after it; ``auto`` or an address: an existing cluster,
    left running (the package is shipped to its workers with ``runtime_env``).  When this process is
    already connected (``ray.init`` called before), that connection is used and left open.
    Ray's usage statistics are off unless ``RAY_USAGE_STATS_ENABLED`` says otherwise.

    Ray turns a node address of 127.0.0.1 into the machine's network address on Linux; the local
    cluster stays on the loopback interface (every server listening on 127.0.0.1 only) through
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which Ray reads when it is first imported -- so when
    this process imported ``ray`` before, that variable must have been set before then."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if compute.ray_address == "":
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        # how long the raylet waits for its agents' ports (too short on a busy machine by default)
        os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
    import ray

    if ray.is_initialized():
        yield
        return
    if compute.ray_address == "":
        ray.init(address="local", include_dashboard=False, num_cpus=compute.local_cpus or None,
                 _node_ip_address=LOCAL_HOST, log_to_driver=False, configure_logging=False)
    else:
        import secmine

        ray.init(address=compute.ray_address, log_to_driver=False, configure_logging=False,
                 runtime_env={"py_modules": [str(Path(secmine.__file__).parent)]})
    try:
        yield
    finally:
        ray.shutdown()


def corpus_dataset(corpus: str | os.PathLike[str], columns: Sequence[str]) -> ray.data.Dataset:
    """The threads of a corpus folder (or one Parquet file) as a Ray dataset with ``columns``, one read
    task per file, so that each block holds the rows of one file (sorted by id) whatever the cluster.

    Hive partition keys in the folder names (``platform=github/``, ``kind=issue/``, ...) become columns
    where the files do not hold them."""
    import ray.data
    from ray.data.datasource.partitioning import Partitioning

    from secmine.collect.corpus import part_files

    source = Path(corpus)
    files = part_files(source)
    if not files:
        raise FileNotFoundError(f"{source}: no Parquet files in the corpus (run the collect stage first)")
    partitioning = Partitioning("hive", base_dir=str(source.resolve())) if source.is_dir() else None
    return ray.data.read_parquet([str(f.resolve()) for f in files], columns=list(columns), partitioning=partitioning,
                                 override_num_blocks=len(files))


def sorted_table(dataset: ray.data.Dataset, schema: pa.Schema, key: str = "id") -> pa.Table:
    """The dataset's rows on the driver as one Arrow table of ``schema``, sorted by ``key``.

    The rows come back in whatever order the workers finish; sorting them here (Arrow's stable sort,
    the ids are unique) makes the result the same whatever the cluster did.  Only results come back
    (ids, metadata, matches or scores), never the texts."""
    import pyarrow as pa

    tables = [batch.cast(schema) for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None)]
    return (pa.concat_tables(tables) if tables else schema.empty_table()).sort_by(key)
