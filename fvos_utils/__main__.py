"""``python -m fvos_utils <step> ...``: the same as ``fvos <step> ...`` (:mod:`fvos_utils.cli`)."""
import sys

from fvos_utils.cli import main

sys.exit(main())
