"""restore: repair damaged photos, scans and video with a GAN inpainting model, offline.

The Python API is the same code the command line runs::

    from restore import Inpainter, read_image, read_mask
    picture = read_image("scan.tif")
    (pixels,) = Inpainter().repair([picture.pixels], [read_mask("mask.png", picture.size)])
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Inpainter": "restore.inpaint.engine",
    "restore_images": "restore.batch",
    "ImagesOptions": "restore.batch",
    "read_image": "restore.io.images",
    "read_mask": "restore.io.images",
    "write_image": "restore.io.images",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import lazily: ``restore --help`` should not pay for importing torch."""
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'restore' has no attribute {name!r}")
