"""How a person reads a score: J, F and J&F in percent, to the field's two decimals.

The records (``metrics.json``, ``scores.json``, every CSV) keep scores as fractions at full precision, for
machines; what a person reads (Markdown and LaTeX tables, the report, the README, ``results.tex``) shows
them as MOSE and DAVIS papers do: ``76.81``, not ``0.7681``. A difference of two scores (``dJ&F``, its
interval's ends, the smallest resolvable difference) is in percentage points, with the same two decimals.

Which table columns hold scores is read off their headers (:func:`is_score_header`); a table whose score
columns have other names says so to :func:`fvos_utils.run.tables.save_table` (``percent=``).
"""
import re

#: decimals of a score shown in percent (the paper: 76.81 J&F)
DECIMALS = 2

#: a header naming a score column: J, F, J&F, with a leading ``d`` for a difference and any qualifier after
#: a space ("J&F touching", "J&F hard"), "baseline J&F", "mean dJ", the ends of a difference's interval
#: ("CI low", "CI high") and the smallest difference a split resolves ("resolvable")
SCORE_HEADER = re.compile(r"(?:baseline |mean )?d?(?:J&F|J|F)(?: .+)?|CI low|CI high|resolvable")


def is_score_header(header: str) -> bool:
    """Whether a table column headed ``header`` holds J, F or J&F fractions (or differences of them)."""
    return SCORE_HEADER.fullmatch(str(header).strip()) is not None


def without_zero_sign(text: str) -> str:
    """A formatted number without its sign where its digits are all zero (``"-0.00"`` -> ``"0.00"``): a tiny
    value that rounds to zero has no direction the digits could show."""
    return text[1:] if text[:1] in "+-" and not any(ch in "123456789" for ch in text) else text


def percent(value: float, decimals: int = DECIMALS) -> str:
    """A fraction as a percentage to ``decimals`` decimals: ``percent(0.76812) == "76.81"``,
    ``percent(-0.00001) == "0.00"``."""
    return without_zero_sign(f"{100 * float(value):.{decimals}f}")


def signed(value: float, decimals: int = DECIMALS) -> str:
    """A difference of two fractions in percentage points, with its sign: ``signed(0.01274) == "+1.27"``,
    ``signed(-0.0045) == "-0.45"``; a value that rounds to zero is ``"0.00"``, with no direction."""
    return without_zero_sign(f"{100 * float(value):+.{decimals}f}")
