"""``python -m saetools.cli``: the command line."""

from . import main

main()
