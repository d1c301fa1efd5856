"""The train stage checkpoints its search per fold fit: a run killed with SIGKILL resumes without
refitting the folds it finished, and ends with the reports of an uninterrupted run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SCRIPT = """
import json, os, signal, sys
from pathlib import Path
from secmine.detect import train
from secmine.detect.labelled import read_labelled_file
from secmine.detect.models import ModelSettings

labelled_csv, tiny, out, checkpoints, kill_after = sys.argv[1:6]
kill_after = int(kill_after)
if kill_after:
    put = train.FoldCache.put
    count = [0]
    def killing_put(self, name, val, scores):
        put(self, name, val, scores)
        count[0] += 1
        if count[0] == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    train.FoldCache.put = killing_put
settings = ModelSettings(seed=5, num_threads=1, backbone=tiny, max_length=64, epochs=2, batch_size=8,
                         learning_rate=5e-3, warmup_ratio=0.0)
messages = []
out = Path(out)
train.train_labelled(
    read_labelled_file(labelled_csv), model_dir=out / "model", settings=settings,
    families="tfidf_logreg,transformer", test_size=0.25, n_folds=3, n_trials=3, transformer_trials=2, n_boot=100,
    tables_dir=out / "tables", figures_dir=None, metrics_path=out / "train.json",
    labelled_out=out / "labelled.parquet", predictions_out=out / "predictions.parquet", log=messages.append,
    checkpoint_dir=checkpoints if checkpoints != "-" else None,
)
print(json.dumps([m for m in messages if m.startswith("fold fits")]))
"""


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train_run.py"
    script.write_text(SCRIPT, encoding="utf-8")
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=900, check=False)


def _counts(done: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    """(fold fits reused, fold fits computed) from the run's log line."""
    (line,) = json.loads(done.stdout.strip().splitlines()[-1])
    words = line.split()
    return int(words[2]), int(words[-2])


def test_killed_train_resumes_from_its_fold_checkpoints(fixtures_dir: Path, tmp_path: Path) -> None:
    from secmine_testing.tiny_models import build_tiny_transformer

    labelled_csv = fixtures_dir / "detect" / "labelled.csv"
    tiny = build_tiny_transformer(tmp_path / "tiny", pd.read_csv(labelled_csv)["text"].tolist())
    common = [str(labelled_csv), str(tiny)]
    reference = _run([*common, str(tmp_path / "reference"), "-", "0"], tmp_path)
    assert reference.returncode == 0, reference.stderr[-3000:]

    checkpoints = tmp_path / "folds"
    killed = _run([*common, str(tmp_path / "resumed"), str(checkpoints), "7"], tmp_path)
    assert killed.returncode == -9, killed.stderr[-3000:]  # SIGKILL in the middle of the search
    assert len(list(checkpoints.glob("*.parquet"))) == 7 and not list(checkpoints.glob(".*tmp"))
    assert not (tmp_path / "resumed" / "train.json").exists()

    resumed = _run([*common, str(tmp_path / "resumed"), str(checkpoints), "0"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    hits, computed = _counts(resumed)
    assert hits == 7 and computed > 0  # the finished folds were not refitted, the rest were
    # the reports and the model are those of the uninterrupted run
    for name in sorted(p.name for p in (tmp_path / "reference" / "tables").iterdir()):
        assert ((tmp_path / "resumed" / "tables" / name).read_bytes()
                == (tmp_path / "reference" / "tables" / name).read_bytes()), name
    assert (tmp_path / "resumed" / "train.json").read_bytes() == (tmp_path / "reference" / "train.json").read_bytes()
    a = pd.read_parquet(tmp_path / "reference" / "predictions.parquet")
    b = pd.read_parquet(tmp_path / "resumed" / "predictions.parquet")
    pd.testing.assert_frame_equal(a, b)
    for name in ("model.safetensors", "model.skops"):
        if (tmp_path / "reference" / "model" / name).is_file():
            assert ((tmp_path / "resumed" / "model" / name).read_bytes()
                    == (tmp_path / "reference" / "model" / name).read_bytes()), name

    # a run with everything finished refits no fold; a change of the data invalidates every entry
    again = _run([*common, str(tmp_path / "again"), str(checkpoints), "0"], tmp_path)
    assert _counts(again) == (hits + computed, 0)


def test_fold_cache_keys_change_with_data_params_and_rows(tmp_path: Path) -> None:
    from secmine.detect.models import ModelSettings
    from secmine.detect.train import FoldCache

    cache = FoldCache(tmp_path / "c")
    labels = np.array([0, 1, 0, 1])
    settings = ModelSettings(seed=1)
    base = FoldCache.data_key(["a", "b", "c", "d"], labels, None, np.ones(4, bool), settings)
    assert base != FoldCache.data_key(["a", "b", "c", "e"], labels, None, np.ones(4, bool), settings)
    assert base != FoldCache.data_key(["a", "b", "c", "d"], labels[::-1], None, np.ones(4, bool), settings)
    assert base != FoldCache.data_key(["a", "b", "c", "d"], labels, None, np.ones(4, bool), ModelSettings(seed=2))
    fit, val = np.array([0, 1]), np.array([2, 3])
    key = cache.key(base, "tfidf_logreg", {"C": 1.0}, fit, val)
    assert key != cache.key(base, "tfidf_logreg", {"C": 2.0}, fit, val)
    assert key != cache.key(base, "tfidf_logreg", {"C": 1.0}, np.array([0, 2]), np.array([1, 3]))
    assert cache.get(key, val) is None
    cache.put(key, val, np.array([0.25, 0.75]))
    assert np.array_equal(cache.get(key, val), [0.25, 0.75])
    assert cache.get(key, np.array([3, 2])) is None  # other rows: never reused
    stale = cache.key(base, "tfidf_logreg", {"C": 3.0}, fit, val)
    cache.put(stale, val, np.array([0.5, 0.5]))
    cache.used.discard(stale)
    assert cache.prune() == 1 and (cache.folder / f"{key}.parquet").is_file()
