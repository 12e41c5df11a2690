"""``restore video``: stream-repair clips and frame sequences; see job.py for the pipeline."""
