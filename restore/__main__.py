"""``python -m restore`` is the same as the ``restore`` command."""

from restore.cli import main

main()
