"""Real LaTeX for the table tests: Debian's TeX Live, and documents laid out as a paper's pages.

Where ``pdflatex`` is missing, :func:`pdflatex_or_skip` installs Debian's TeX Live packages when the tests run
as root and ``CI`` or ``FVOS_INSTALL_TEXLIVE`` is set; otherwise the test is skipped with the reason.
:func:`check_tables` sets every table in a one-column article and on a two-column conference page
(:mod:`fvos_utils.run.tables`' widths) and fails on an error or on any overfull line.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fvos_utils.run import tables

PACKAGES = ("texlive-latex-base", "texlive-latex-recommended")  # pdflatex; booktabs (tabularx is in the base)
INSTALL_OPT_IN = "FVOS_INSTALL_TEXLIVE"

#: the two pages a table must fit: LaTeX's article, and a two-column page of the kit's stated widths
LAYOUTS = {
    "one column": r"\documentclass{article}",
    "two columns": "\n".join([r"\documentclass[twocolumn]{article}",
                              rf"\usepackage[textwidth={tables.TWO_COLUMN_PAGE['textwidth']}pt,"
                              rf"columnsep={tables.TWO_COLUMN_PAGE['columnsep']}pt]{{geometry}}"]),
}


def _install() -> str | None:
    """Install :data:`PACKAGES` where allowed and missing; what went wrong, or None."""
    if shutil.which("pdflatex") or os.geteuid() != 0 or not (os.environ.get("CI") or os.environ.get(INSTALL_OPT_IN)):
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                                   *PACKAGES]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, check=False)
        if done.returncode:
            return f"`{' '.join(command)}` failed: {(done.stderr or done.stdout).strip()[-300:]}"
    return None


def available() -> bool:
    """Whether pdflatex is here, after installing it where allowed (CI, or the opt-in, as root)."""
    _install()
    return shutil.which("pdflatex") is not None


def pdflatex_or_skip() -> str:
    problem = _install()
    found = shutil.which("pdflatex")
    if found is None:
        pytest.skip(f"LaTeX tests skipped: pdflatex not found{'; ' + problem if problem else ''} (install Debian's "
                    f"{' '.join(PACKAGES)}, or run as root with CI or {INSTALL_OPT_IN}=1 set to let the tests "
                    "install them)")
    return found


def compile_document(folder: Path, name: str, preamble: str, body: str) -> str:
    """Compile ``<folder>/<name>.tex`` with pdflatex; its log. Fails on an error, naming the document."""
    source = folder / f"{name}.tex"
    packages = ",".join(tables.LATEX_PACKAGES)
    source.write_text(f"{preamble}\n\\usepackage{{{packages}}}\n\\begin{{document}}\n{body}\n\\end{{document}}\n")
    # TeX's caches in the test's folder, never the user's home
    env = dict(os.environ, TEXMFVAR=str(folder / "texmf-var"), TEXMFCONFIG=str(folder / "texmf-config"))
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name], cwd=folder,
                          capture_output=True, text=True, timeout=300, env=env)
    log = (folder / f"{name}.log").read_text(errors="replace")
    assert done.returncode == 0, f"{source}: pdflatex failed:\n{done.stdout[-3000:]}"
    return log


def check_tables(tex_files: list[Path], folder: Path, *, values: Path | None = None) -> dict[str, str]:
    """Set each of ``tex_files`` (copied into ``folder``) on a page of each of :data:`LAYOUTS`, and ``values``
    (a ``results.tex``) with every name it defines quoted once; assert no overfull line anywhere. Returns
    ``{name: text}`` of the values as TeX printed them (read back from the log)."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs = []
    for number, tex in enumerate(tex_files):
        copy = folder / f"table{number}.tex"  # the chapters' tables share file names
        copy.write_text(tex.read_text())
        inputs.append(rf"\input{{{copy.name}}}\clearpage")
    printed = {}
    for layout, preamble in LAYOUTS.items():
        body = "\n".join(inputs)
        if values is not None:
            shutil.copy(values, folder / "results.tex")
            names = re.findall(r"\\@namedef\{fvos@([^}]+)\}", values.read_text())
            preamble += "\n\\input{results.tex}"
            # each value quoted in the text, and each written to the log to compare with the file
            body += "\n\\sloppy\n" + " ".join(rf"\fvos{{{name}}}" for name in names)
            body += "\n\\makeatletter\n" + "\n".join(rf"\typeout{{fvos value {name}=\@nameuse{{fvos@{name}}}}}"
                                                     for name in names) + "\n\\makeatother"
        log = compile_document(folder, layout.replace(" ", "_"), preamble, body)
        overfull = [line for line in log.splitlines() if line.startswith("Overfull")]
        assert not overfull, f"{layout}: {len(overfull)} overfull lines, e.g. {overfull[:3]} ({folder / layout})"
        printed = dict(re.findall(r"^fvos value ([^=\n]+)=(.*)$", log, flags=re.M))
    return printed
