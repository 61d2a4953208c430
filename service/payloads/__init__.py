"""The payload log: served requests and their answers, kept for the next training (docs/operations/payload-log.md).

- `log`: `PayloadLog`, which the inference routes hand each answered request to; it samples,
  queues and, on a thread of its own, writes one JSON Lines record per input;
- `rotating`: the log's files, rotated by size, a fixed number kept;
- `export`: `python -m service.payloads export`, a log turned into the training jobs' input
  (a CSV for `training.sentiment`, class folders for `training.image_classifier`).

Importing this package imports no TensorFlow, so the export starts at once.
"""
