"""`restore --version` prints the installed package's version (its metadata, not a copy)."""

from __future__ import annotations

import importlib.metadata

from click.testing import CliRunner

from restore.cli import main


def test_version_is_the_package_metadata():
    result = CliRunner().invoke(main, ["--version"], prog_name="restore")
    assert result.exit_code == 0, result.output
    expected = importlib.metadata.version("restore")
    assert result.output.strip() == f"restore, version {expected}"
