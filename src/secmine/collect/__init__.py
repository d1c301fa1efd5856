"""The ``collect`` stage: the thread corpus, from a snapshot or from the Hugging Face and GitHub APIs.

Modules:

``corpus``           the corpus on disk (Parquet partitioned by platform, kind, hash bucket), streaming
                     writers and :func:`iter_batches`, :func:`read_corpus`, DuckDB view
``bots``             bot filtering (``[bot]`` logins plus a configurable list) and de-duplication
``snapshot_source``  the offline corpus: a JSON-lines snapshot plus the replication package's posts
``http``             the HTTP layer: token pool, rate limits, retries, timeouts, archive recording
``answers``          whether a 2xx answer is an answer (HTML, empty, data: null, partial, timed out)
``archive``          runs, checkpoints and the compressed JSON-lines archive of every raw response
``github``           the GitHub GraphQL collector (issues, pull requests, discussions with comments)
``huggingface``      the Hugging Face collector (models, README links, discussions and their events)
``linking``          README GitHub links and best-match linking of models to repositories
``live``             a live crawl, its resume and incremental runs, replay and rehydration
``commands``         the ``secmine collect``, ``replay``, ``rehydrate`` and ``collect-reset`` commands

Heavy modules are not imported here, so ``from secmine.collect.corpus import read_corpus`` stays cheap.
"""
