"""Many observations into a prometheus-client Histogram child at once.

prometheus-client has no bulk observe: per value, `observe` takes a lock and walks the
buckets, which for a batch of 64 predictions is 64 lock round trips on the event loop. This
fills the child's own bucket and sum values the way `observe` does (a bucket holds the values
above the previous bound up to its own; the exposition adds them up), and falls back to
`observe` per value if a release of the library stores them differently
(docs/decisions/0008-bulk-histogram-observe.md).

Reaches into: `Histogram` children's `_buckets`, `_upper_bounds` and `_sum`.
Tested on: prometheus-client 0.26 (the lock's); tests/service/shims/test_prometheus_bulk_observe.py.
Remove when: prometheus-client offers a bulk observe of its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def observe_many(histogram: Any, values: np.ndarray) -> None:
    """Observe every value of `values` into a labelled Histogram child."""
    if len(values) == 0:
        return
    buckets, bounds, total = (getattr(histogram, name, None) for name in ("_buckets", "_upper_bounds", "_sum"))
    if buckets is None or bounds is None or total is None or len(buckets) != len(bounds):
        for value in values.tolist():
            histogram.observe(value)
        return
    counts = np.bincount(np.searchsorted(np.asarray(bounds), values, side="left"), minlength=len(bounds))
    for index in np.flatnonzero(counts).tolist():
        buckets[index].inc(int(counts[index]))
    total.inc(float(values.sum()))
