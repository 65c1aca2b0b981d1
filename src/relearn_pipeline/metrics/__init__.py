"""The paper's evaluation, computed locally; one module per concept, each returning an aggregate
value and per-sample values (``result.MetricResult``).

- ``token_scores``: teacher-forced per-token statistics of an answer given its question
- ``linguistic``: Brunet, Honoré, perplexity, their transforms and LS
- ``similarity`` / ``entities``: MiniLM embeddings, entity extraction and entity similarity
- ``judges``: the ``semantic`` (default) and ``nli`` judges behind one interface
- ``kfr_krr``: the Knowledge Forgetting / Retention Rate decision rules
- ``rouge``: ROUGE-1 / ROUGE-L recall
- ``probes``: exact memorization, extraction strength, MIA scores and AUC
"""
