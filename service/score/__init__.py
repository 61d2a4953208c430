"""Offline scoring: `python -m service.score MODEL INPUT --output OUT` (docs/scoring.md).

The same loading, handlers and decoding as the service, in one process and with no HTTP:

- `inputs`: CSV, JSON Lines, Parquet or a folder of images, checked, then read in chunks;
- `scorer`: `BatchScorer`, one model version loaded once, scoring a batch of rows (reusable on Ray Data);
- `job`: the pipeline that keeps the model busy (decoding and writing beside the model calls);
- `outputs`: CSV, JSON Lines or Parquet, written in parts;
- `checkpoint`: the parts committed one by one, so that `--resume` continues exactly where a run stopped;
- `progress`: rows/s and the time left.

Importing this package imports no TensorFlow: a refused job is refused at once.
"""
