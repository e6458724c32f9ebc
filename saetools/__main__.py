"""``python -m saetools``: the command line."""

from .cli import main

main()
