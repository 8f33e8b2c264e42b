"""Data: what the kit reads and what it hands in (above ``base``; beside ``metrics``, never importing it).

- ``synthetic``: the embedded default dataset, a synthetic mini-MOSE
- ``datasets``: what a chapter reads: the synthetic set, or a hold-out view of real MOSE train
- ``testing``: generated label sequences and layouts for tests and benchmarks
- ``submissions``: the MOSE server zip, checked against the val folder
"""
