"""The payload log: served requests and their answers, kept for the next training (docs/operations/payload-log.md).

- `log`: `PayloadLog`, which the inference routes hand each answered request to; it samples,
  queues and, on a thread of its own, writes one JSON Lines record per input;
- `rotating`: the log's files, rotated by size, a fixed number kept.
"""
