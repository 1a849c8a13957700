"""``python -m asdlib.simulate ...``: the same as ``asdlib simulate ...`` (one parser, :mod:`asdlib.cli`)."""
import sys

from ..cli import main

sys.exit(main(["simulate", *sys.argv[1:]]))
