"""Finding the security discussions: the ``keywords``, ``train`` and ``classify`` stages.

* :mod:`secmine.detect.keywords` — Aho-Corasick keyword matching over title, body and comments.
* :mod:`secmine.detect.labelled` — the labelled set, assembled with provenance per row.
* :mod:`secmine.detect.splits` — leakage-free (grouped, stratified) test split and folds.
* :mod:`secmine.detect.metrics` — MCC, F1, precision, recall, accuracy with bootstrap intervals.
* :mod:`secmine.detect.models` — the model families compared (keyword baseline, TF-IDF, frozen
  embeddings, fine-tuned transformers, LLM zero/few-shot).
* :mod:`secmine.detect.train` — Optuna search on shared folds, the comparison, the saved best model.
* :mod:`secmine.detect.predict` — loading a saved model and resumable, chunked inference at scale.
* :mod:`secmine.detect.commands` — the ``secmine keywords|train|evaluate|classify`` commands.
"""
