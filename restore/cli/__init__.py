"""The ``restore`` command line: one small module per command, no logic here."""

from __future__ import annotations

import click

from restore.cli.detect import detect_command
from restore.cli.eval import eval_command
from restore.cli.images import images_command
from restore.cli.train import train_command
from restore.cli.video import video_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="restore")
def main() -> None:
    """Repair damaged photos, scans and video with a GAN inpainting model, offline."""


main.add_command(detect_command)
main.add_command(eval_command)
main.add_command(images_command)
main.add_command(train_command)
main.add_command(video_command)
