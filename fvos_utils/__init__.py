"""fvos_utils: the computing half of the FVOS research kit (notebooks narrate, this package computes).

One module per step of the method:

- ``paths``: every path the kit uses (never the current directory)
- ``io``: DAVIS / MOSE layouts, palette masks, atomic writes, splits
- ``synthetic``: the embedded default dataset, a synthetic mini-MOSE
- ``evaluate``: J&F (DAVIS 2017 semi-supervised and MOSEv2 modes)
- ``baselines``: the zero-motion baseline
- ``models``: SAM 2 / 2.1 registry, downloads, the kit's small config, overrides (scale, sigmoid)
- ``transforms``: test-time flips and rotations with exact inverses
- ``infer``: propagation (separate / joint), merge rules, resumable batch runs
- ``probs``: per-object probability files
- ``train``: two-stage fine-tuning on Meta's SAM 2 trainer
- ``selection``: epoch selection, memory-sigmoid search, MOSE submission zips
- ``postprocess``: the paper's gap filling between adjacent objects
- ``fusion``: multi-scale / test-time voting and soft fusion
- ``viewer``: an ipywidgets result browser
- ``pipeline``: the chapters in order through papermill
- ``figures``: one figure style; PNG + PDF
- ``provenance``: versions, git commit, device for ``metrics.json``
"""
__version__ = "0.1.0"
