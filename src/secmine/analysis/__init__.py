"""The ``rq1``, ``sample`` and ``topics`` stages, the coding round-trip and their statistics.

Modules:

``stats``     proportions with Wilson intervals, Cochran sample sizes, Gini/Lorenz, growth rates,
              agreement (Cohen's kappa, Krippendorff's alpha)
``rq1``       RQ1: how much security reporting there is, where, and how it grows
``sampling``  the stratified sample drawn for thematic analysis
``coding``    the XLSX coding sheet, import of coded sheets, agreement, resolution to mapped.csv
``topics``    BERTopic over the security threads, aligned with the manual themes
``commands``  the ``secmine`` commands of this area
"""
