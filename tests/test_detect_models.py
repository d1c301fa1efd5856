"""Every model family on tiny data: fit, predict, save with a model card, load, same predictions.

The transformer is a tiny DistilBERT built from a config with a WordPiece tokenizer trained
offline (secmine_testing.tiny_models), so the real code path (Trainer, save_pretrained, dynamic batching)
runs in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from secmine.detect.backbones import BackboneError, minilm_path, resolve_backbone
from secmine.detect.batching import plan_batches
from secmine.detect.models import FAMILIES, ModelError, ModelSettings, get_family
from secmine.detect.predict import load_model
from secmine.detect.train import save_model


@pytest.fixture(scope="module")
def data(fixtures_dir: Path) -> pd.DataFrame:
    return pd.read_csv(fixtures_dir / "detect" / "labelled.csv")


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory, data: pd.DataFrame) -> Path:
    from secmine_testing.tiny_models import build_tiny_transformer

    return build_tiny_transformer(tmp_path_factory.mktemp("tiny"), data["text"].tolist())


def _settings(tiny: Path) -> ModelSettings:
    return ModelSettings(seed=1, num_threads=1, backbone=str(tiny), max_length=64, epochs=8, batch_size=8,
                         learning_rate=5e-3, warmup_ratio=0.0, eval_batch_size=16, max_tokens_per_batch=256)


def _round_trip(model, texts: list[str], directory: Path) -> np.ndarray:
    card = {"family": model.family, "params": model.params, "settings": model.settings.to_dict(),
            "threshold": 0.5, "text": {"max_chars": 4000}}
    save_model(model, directory, card)
    loaded, loaded_card = load_model(directory)
    assert loaded_card["family"] == model.family
    return loaded.predict_proba(texts)


@pytest.mark.parametrize("family", ["keyword", "tfidf_logreg", "tfidf_svm"])
def test_fast_families_learn_and_round_trip(family: str, data: pd.DataFrame, tmp_path: Path) -> None:
    texts, labels = data["text"].tolist(), data["label"].to_numpy()
    model = get_family(family)(None, ModelSettings(seed=0)).fit(texts, labels)
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts),) and ((proba >= 0) & (proba <= 1)).all()
    if family == "keyword":  # nothing learnt: exactly "does a paper keyword occur?"
        from secmine.detect.keywords import KeywordMatcher

        assert proba.tolist() == [float(KeywordMatcher().matches(t)) for t in texts]
        assert 0 < proba.sum() < len(texts)
    else:
        assert float(np.mean((proba >= 0.5) == labels)) > 0.95
    assert np.array_equal(_round_trip(model, texts, tmp_path / family), proba)


def test_sentence_embeddings_with_logistic_regression(data: pd.DataFrame, tmp_path: Path) -> None:
    texts, labels = data["text"].tolist(), data["label"].to_numpy()
    model = get_family("embed_logreg")(None, ModelSettings(seed=0)).fit(texts, labels)
    proba = model.predict_proba(texts)
    assert float(np.mean((proba >= 0.5) == labels)) > 0.9
    assert np.allclose(_round_trip(model, texts, tmp_path / "embed"), proba)
    assert model.describe()["encoder"] == "minilm"


def test_tiny_distilbert_fine_tunes_saves_and_loads(data: pd.DataFrame, tiny_backbone: Path, tmp_path: Path) -> None:
    texts, labels = data["text"].tolist(), data["label"].to_numpy()
    model = get_family("transformer")(None, _settings(tiny_backbone)).fit(texts, labels)
    proba = model.predict_proba(texts)
    assert float(np.mean((proba >= 0.5) == labels)) > 0.8  # it learnt the (easy) training data
    again = get_family("transformer")(None, _settings(tiny_backbone)).fit(texts, labels)
    assert np.array_equal(again.predict_proba(texts), proba)  # seeded: same training, same numbers
    reloaded = _round_trip(model, texts, tmp_path / "tr")
    assert np.allclose(reloaded, proba, atol=1e-6)
    assert (tmp_path / "tr" / "config.json").is_file() and (tmp_path / "tr" / "model_card.json").is_file()
    # dynamic length-sorted batches give the same numbers as one text at a time, in input order
    single = np.array([model.predict_proba([t])[0] for t in texts[:12]])
    assert np.allclose(single, proba[:12], atol=1e-5)


def test_backbones_resolve_offline_or_fail_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backbone("minilm") == str(minilm_path())
    assert resolve_backbone("sentence-transformers/all-MiniLM-L6-v2") == str(minilm_path())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneError, match=r"not available offline.*huggingface-cli download"):
        resolve_backbone("some-org/definitely-not-cached-model-xyz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError, match="no config.json"):
        resolve_backbone(str(tmp_path / "empty"))


def test_family_registry_and_errors() -> None:
    assert set(FAMILIES) == {"keyword", "tfidf_logreg", "tfidf_svm", "embed_logreg", "transformer",
                             "llm_zero_shot", "llm_few_shot"}
    with pytest.raises(ModelError, match="unknown model family"):
        get_family("bert-large")
    with pytest.raises(ModelError, match="both labels"):
        get_family("tfidf_logreg")().fit(["a", "b"], [1, 1])
    with pytest.raises(ModelError, match="no model card"):
        load_model(Path("/nonexistent/model"))


@pytest.mark.parametrize("seed", range(5))
def test_batch_plan_covers_every_text_once_within_budget(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 300, size=200)
    batches = plan_batches(lengths, max_batch_size=16, max_tokens=1024)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(200))
    for batch in batches:
        assert len(batch) <= 16
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 1024
    assert (np.diff(lengths[flat]) <= 0).all()  # longest first, so padding within a batch is minimal


def test_transformer_loss_weights_balance_classes_and_carry_sample_weights() -> None:
    from secmine.detect.models.base import ModelError, check_weights
    from secmine.detect.models.transformer import item_weights

    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    w = item_weights(y, None, "balanced")
    assert w is not None and w.mean() == pytest.approx(1.0)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())  # each class half the weight
    assert item_weights(y, None, "none") is None  # plain cross-entropy
    hard = item_weights(y, np.array([1.0, 3.0] + [1.0] * 8), "none")
    assert hard[1] == pytest.approx(3 * hard[2])
    with pytest.raises(ModelError, match="class_weight"):
        item_weights(y, None, "inverse")
    with pytest.raises(ModelError, match="positive"):
        check_weights([1.0, -1.0], 2)


def test_sample_weights_change_what_a_tfidf_model_learns() -> None:
    texts = ["token leak in logs", "token in docs", "token leak again", "fix the docs token"] * 5
    labels = np.array([1, 0, 1, 0] * 5)
    plain = get_family("tfidf_logreg")({"min_df": 1}, ModelSettings(seed=0)).fit(texts, labels)
    weights = np.where(np.arange(20) % 4 == 1, 10.0, 1.0)  # the negatives that share "token" weigh more
    heavy = get_family("tfidf_logreg")({"min_df": 1}, ModelSettings(seed=0)).fit(texts, labels, sample_weight=weights)
    probe = ["token in docs"]
    assert heavy.predict_proba(probe)[0] < plain.predict_proba(probe)[0] - 0.05
