"""Beyond the paper: the taxonomy over every security thread.

* :mod:`~secmine.taxonomy.labels` -- the label space of a codebook and its hierarchy;
* :mod:`~secmine.taxonomy.data` -- coded posts with texts (training data);
* :mod:`~secmine.taxonomy.folds` -- grouped iteratively stratified folds, per-label thresholds;
* :mod:`~secmine.taxonomy.models` -- the tagger families (TF-IDF, MiniLM embeddings, fine-tuned
  MiniLM, zero-shot);
* :mod:`~secmine.taxonomy.compare` -- the fair comparison and ``train-tagger``;
* :mod:`~secmine.taxonomy.tagger` -- a saved tagger and ``secmine tag``;
* :mod:`~secmine.taxonomy.prevalence` -- the ``tag`` stage: every security thread tagged,
  predicted prevalence per platform, over time, per repository;
* :mod:`~secmine.taxonomy.ppi` -- estimates that stay valid (classical, plug-in,
  prediction-powered inference), the valid-sample check and the coverage study;
* :mod:`~secmine.taxonomy.ordering` -- the next coding sheet ordered by the tagger's uncertainty.
"""
