"""Metrics: scoring predictions against ground truth (above ``base``; beside ``data``, never importing it).

- ``evaluate``: J&F (DAVIS 2017 semi-supervised and MOSEv2 modes), paired differences with 95% intervals
- ``scoring``: per-tag scores and the records chapters keep of them
- ``baselines``: the zero-motion baseline
- ``percent``: J, F and J&F as a person reads them, in percent
"""
