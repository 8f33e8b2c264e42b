"""fvos_utils: the computing half of the FVOS research kit (notebooks narrate, this package computes).

One module per step of the method:

- ``paths``: every path the kit uses (never the current directory)
- ``io``: DAVIS / MOSE layouts, palette masks, atomic writes, splits
- ``synthetic``: the embedded default dataset, a synthetic mini-MOSE
- ``evaluate``: J&F (DAVIS 2017 semi-supervised and MOSEv2 modes)
- ``figures``: one figure style; PNG + PDF
- ``provenance``: versions, git commit, device for ``metrics.json``
"""
__version__ = "0.1.0"
