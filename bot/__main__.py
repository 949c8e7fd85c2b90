"""``python -m bot``: the same as the ``bot`` command."""

from .cli import main

main()
