"""``python -m restore`` is the same as the ``restore`` command."""

from restore.cli import main

if __name__ == "__main__":  # spawned worker processes import this module too (train --workers)
    main()
