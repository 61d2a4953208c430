"""TensorFlow graph rewrite options for one model's calls: a version in bf16 beside versions in float32.

oneDNN's bf16 auto mixed precision is a Grappler rewrite, and TensorFlow's public switch for it,
`tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})`,
is process-wide. Measured on TensorFlow 2.21 (docs/decisions/0011-bf16-per-version-call-options.md):

- The rewrite options are read at each call, not at load: the Grappler config is an attribute of
  every function call, and a function called under another config is instantiated (rewritten)
  again. Setting the option, loading and warming up a version, then unsetting it leaves that
  version in float32.
- Each thread keeps the call options it built from the process's config at its first call;
  setting the option resets only the calling thread's. A model thread that has already run keeps
  float32 after the option is set elsewhere, while a new thread gets bf16: flipping the option in
  a running service gives a mixture that depends on which thread runs a batch.

The one thing that is per call is the eager context's thread-local `function_call_options` (what
TensorFlow's own `context.function_executor_type` swaps for the length of a `with`). `with_options`
swaps it for the length of one model call on the thread that runs it, so the version whose
predict it wraps runs under its own config and every other call keeps the process's.

Reaches into: `tensorflow.python.eager.context` (`context().function_call_options`, its setter,
`FunctionCallOptions`).
Tested on: TensorFlow 2.21 (the lock's); tests/service/shims/test_tensorflow_call_options.py shows
that a wrapped call is rewritten and a concurrent unwrapped one is not.
Remove when: TensorFlow lets a loaded function carry its own rewrite options.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
from tensorflow.python.eager import context

T = TypeVar("T")


def bf16_call_options() -> Any:
    """The calling thread's function call options with oneDNN's bf16 auto mixed precision turned on."""
    current = context.context().function_call_options
    config = config_pb2.ConfigProto.FromString(current.config_proto_serialized)
    config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    return context.FunctionCallOptions(executor_type=current.executor_type, config_proto=config)


def with_options(predict: Callable[[Any], T], options: Any) -> Callable[[Any], T]:
    """`predict`, each of whose calls runs under `options` on the thread that makes it."""

    def call(batch: Any) -> T:
        eager = context.context()
        previous = eager.function_call_options
        eager.function_call_options = options
        try:
            return predict(batch)
        finally:
            eager.function_call_options = previous

    return call
