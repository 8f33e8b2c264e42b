"""The notebook machinery: chapters, the pipeline that runs them through papermill, the book, figures.

- ``chapter``: what a running chapter notebook calls first; its output folder and ``metrics.json``
- ``pipeline``: the chapters in order, from one params file
- ``book``: an executed run as a static HTML book
- ``figures``: one figure style; PNG + PDF; booktabs tables
"""
