"""The bottom layer: what every other part of the kit stands on, and nothing of FVOS itself.

- ``paths``: every path the kit uses (never the current directory)
- ``progress``: one progress bar, quiet in logs and saved notebooks
- ``io``: DAVIS / MOSE layouts, palette masks, frames, atomic writes, list files
- ``locks``: one writer per output (a second is refused)
- ``outputs``: the output folder of a command line that writes one prediction folder
- ``provenance``: versions, git commit and device, for ``metrics.json``
"""
