"""``restore eval``: score an inpainting model against classical fills on photos with known truth."""

from __future__ import annotations

EXTRA_HINT = "pip install 'restore[eval]'"


class MissingPackage(RuntimeError):
    """An optional package needed for evaluation is missing; the message says what to install."""
