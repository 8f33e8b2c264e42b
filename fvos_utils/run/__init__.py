"""The notebook machinery: chapters, the pipeline that runs them through papermill, the book, figures, tables.

- ``chapter``: what a running chapter notebook calls first; its output folder and ``metrics.json``
- ``pipeline``: the chapters in order, from one params file
- ``book``: an executed run as a static HTML book
- ``figures``: one figure style; PNG + PDF; mask overlays
- ``tables``: every table as CSV, Markdown and booktabs LaTeX laid out for a paper; scores in percent; named values for LaTeX
"""
