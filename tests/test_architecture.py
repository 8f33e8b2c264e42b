"""The package's architecture as a checked contract: subpackages by role, imports only downward, no cycle
inside a subpackage (``[tool.importlinter]`` in pyproject.toml), and each default of the paper and of
SAM 2 owned by one module."""
import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fvos_utils.base import paths

CONFIG = paths.project_root() / "pyproject.toml"


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """import-linter on the ``fvos_utils`` found in ``package_parent``, with the kit's contracts."""
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           f"sys.exit(lint_imports(config_filename={str(CONFIG)!r}, no_cache=True, no_logo=True))"],
                          capture_output=True, text=True, timeout=300, cwd=package_parent,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package_parent)})


def test_the_kit_keeps_its_import_contracts():
    done = lint_imports(paths.KIT_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


@pytest.fixture
def package_copy(tmp_path) -> Path:
    shutil.copytree(paths.PACKAGE_DIR, tmp_path / "fvos_utils", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _plant(package_parent: Path, module: str, line: str) -> None:
    path = package_parent / "fvos_utils" / module
    text = path.read_text()
    head, rest = text.split("\nfrom ", 1)  # below the docstring and the first imports
    path.write_text(f"{head}\n{line}\nfrom {rest}")


def test_an_upward_import_breaks_the_layers_contract_naming_its_line(package_copy):
    _plant(package_copy, "base/paths.py", "from fvos_utils.studies import claims  # planted")
    done = lint_imports(package_copy)
    assert done.returncode == 1
    assert "Subpackages import only downward BROKEN" in done.stdout
    assert "fvos_utils.base.paths -> fvos_utils.studies.claims (l." in done.stdout


def test_data_importing_metrics_breaks_their_independence(package_copy):
    _plant(package_copy, "data/datasets.py", "from fvos_utils.metrics import evaluate  # planted")
    done = lint_imports(package_copy)
    assert done.returncode == 1 and "fvos_utils.data.datasets -> fvos_utils.metrics.evaluate" in done.stdout


def test_a_cycle_inside_a_subpackage_breaks_the_acyclic_contract(package_copy):
    _plant(package_copy, "base/io.py", "from fvos_utils.base import locks  # planted")  # locks imports io
    done = lint_imports(package_copy)
    assert done.returncode == 1
    assert "No import cycle inside a subpackage BROKEN" in done.stdout


FOLLOWS_THE_FILLING_RULE = """
from fvos_utils.data import testing
from fvos_utils.method import postprocess, recipe
from fvos_utils.method.postprocess import NO_FILLING, PAPER_FILLING, GapFilling
from fvos_utils.studies import claims, morphology_ablation

def scores(jf):
    return testing.evaluator_result({("a", 1): (jf, jf), ("b", 1): (jf - 0.02, jf), ("c", 1): (jf + 0.01, jf)})

print("rule", PAPER_FILLING.name)
print("recipe", recipe.settings_for_run("a-run-with-no-picks").filling.name)
args = postprocess.build_parser().parse_args(["--in", "a", "--out", "b"])
print("command line", args.method, args.shape, args.kernel)
results = {NO_FILLING: scores(0.5), GapFilling("paper", "square", 2): scores(0.6), PAPER_FILLING: scores(0.7)}
pick = morphology_ablation.kernel_pick(results)
for c in morphology_ablation.kernel_comparisons(results, NO_FILLING, pick):
    print("study", c.claim, c.treatment, "|", c.baseline)
print("claim", [claim.text for claim in claims.CLAIMS if claim.key == "fill"][0])
"""


def test_the_paper_filling_rule_changed_in_one_place_is_followed_everywhere(package_copy, tmp_path):
    """postprocess.PAPER_FILLING is the one place the paper's rule is written: changed there (in a copy of the
    package), the recipe's fallback, the command line's defaults, chapter 05's study and the claim follow."""
    owner = package_copy / "fvos_utils" / "method" / "postprocess.py"
    text = owner.read_text()
    assert text.count('PAPER_FILLING = GapFilling("paper", "square", 2)') == 1
    owner.write_text(text.replace('PAPER_FILLING = GapFilling("paper", "square", 2)',
                                  'PAPER_FILLING = GapFilling("paper", "circle", 3)'))
    done = subprocess.run([sys.executable, "-c", FOLLOWS_THE_FILLING_RULE], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package_copy),
                                                          paths.ROOT_ENV: str(tmp_path / "kit")})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["rule paper-circle-k3", "recipe paper-circle-k3", "command line paper circle 3"]
    assert "study fill circle kernel 3 | no filling" in lines
    assert "study kernel2 circle kernel 3 | square kernel 2, the best other candidate" in lines
    assert lines[-1] == "claim Gap filling with a circle kernel of 3 beats no filling"


def test_each_default_of_the_paper_and_of_sam2_is_written_once():
    """The filling rule, the 7 scales, SAM 2's sigmoid pair and the epoch counts: each assigned in one module
    of the package, and the notebooks' parameter defaults (literals, as papermill needs) equal them."""
    from fvos_utils.method import fusion, models, postprocess, train
    from fvos_utils.run import pipeline

    owners = {"PAPER_FILLING": "method/postprocess.py", "FVOS_SCALES": "method/fusion.py",
              "DEFAULT_SIGMOID": "method/models.py", "PAPER_EPOCHS": "method/train.py"}
    for name, owner in owners.items():
        assigned = [path.relative_to(paths.PACKAGE_DIR).as_posix() for path in sorted(paths.PACKAGE_DIR.rglob("*.py"))
                    if re.search(rf"^{name}\b[^=\n]*=(?!=)", path.read_text(), re.M)]
        assert assigned == [owner], name
    # the values the paper states (sections 2.1-2.3) and SAM 2's released configs
    assert postprocess.PAPER_FILLING == postprocess.GapFilling("paper", "square", 2)
    assert fusion.FVOS_SCALES == (1.0, 1.125, 1.25, 1.375, 1.5, 1.625, 1.75)
    assert models.DEFAULT_SIGMOID == (20.0, -10.0) and train.PAPER_EPOCHS == {1: 10, 2: 40}
    def default(chapter: str, name: str):
        return ast.literal_eval(pipeline.notebook_parameters(chapter)[name]["default"])

    assert default("06_multiscale_fusion", "scales") == list(fusion.FVOS_SCALES)
    assert (default("06_multiscale_fusion", "fill_kernel"), default("06_multiscale_fusion", "fill_shape")) == \
        (postprocess.PAPER_FILLING.kernel, postprocess.PAPER_FILLING.shape)
    assert postprocess.PAPER_FILLING.kernel in default("05_morphology_ablation", "kernel_sizes")
