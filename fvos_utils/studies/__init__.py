"""The experiments about the method: one module per chapter's study, and the claims they judge.

- ``claims``: the paper's claims, each comparison with its 95% interval and verdict
- ``epoch_selection``: every training epoch scored, the best picked (chapters 02, 03)
- ``sigmoid_search``: the memory-encoder sigmoid grid (chapter 04)
- ``morphology_ablation``: gap-filling kernels and rules (chapter 05)
- ``fusion_ablation``: scale and transform sets, hard and soft votes (chapter 06)
- ``ablation``: the recipe ablated step by step on held-out test (chapter 06)
- ``report``: the paper's tables beside this run's, the README block (chapter 07)
- ``viewer``: an ipywidgets result browser (chapter 08)
"""
