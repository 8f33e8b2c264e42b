"""The paper's method, one module per step (paper section 2), and SAM 2 underneath it.

- ``models``: SAM 2 / 2.1 registry, downloads, the kit's small config, image scale and memory sigmoid
  (owner of SAM 2's default sigmoid pair)
- ``transforms``: test-time flips and rotations with exact inverses
- ``infer``: propagation (separate / joint), merge rules, resumable batch runs
- ``probs``: per-object probability files
- ``train``: two-stage fine-tuning on Meta's SAM 2 trainer (owner of the paper's epoch counts)
- ``postprocess``: gap filling between adjacent objects (owner of the paper's filling rule)
- ``fusion``: multi-scale / test-time voting and soft fusion (owner of the paper's 7 scales)
- ``choices``: the records of what a run chose (weights, sigmoid, filling, scales) and their defaults
- ``recipe``: the whole recipe in the paper's order, and the server zip
"""
