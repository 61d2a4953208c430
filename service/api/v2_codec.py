"""Open Inference Protocol (KServe v2) tensors: requests in, responses out, JSON or binary.

A v2 request is JSON, optionally followed by raw tensor bytes; the JSON's length is then
given in the `Inference-Header-Content-Length` header and each binary input says its size
in `parameters.binary_data_size`. BYTES elements in binary form are each a 4-byte
little-endian length followed by the bytes.

`decode_request` does all of it, parsing and checking against what the model takes
(`TensorSpec`, from its handler), so that the route only hands it to a worker thread and
submits the tensor it returns. The table of datatypes exists once, here.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.core.errors import InvalidInput, MalformedRequest

HEADER_LENGTH = "inference-header-content-length"

# The protocol's datatypes and their little-endian numpy dtypes; BYTES elements are byte strings.
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64",
    "BYTES",
]
Dimension = Annotated[int, Field(ge=0, le=2**31 - 1)]


class InputTensor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    shape: list[Dimension] = Field(max_length=8)
    datatype: Datatype
    parameters: dict[str, Any] = Field(default_factory=dict)
    data: list[Any] | None = None


class RequestedOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    parameters: dict[str, Any] = Field(default_factory=dict)


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, max_length=200)
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: list[InputTensor] = Field(min_length=1, max_length=1)
    outputs: list[RequestedOutput] | None = None


@dataclass(frozen=True)
class TensorSpec:
    """What one model takes: its input's name, datatype and per-row shape, and the most rows per request."""

    name: str
    datatype: str
    item_shape: list[int]
    max_rows: int
    output: str
    explanation_outputs: tuple[str, ...] = ()  # the extra outputs `parameters.explain` adds (empty: cannot explain)


@dataclass(frozen=True)
class DecodedRequest:
    id: str | None
    tensor: np.ndarray  # [rows, *item_shape] of the spec's datatype
    binary_output: bool
    explain: bool = False
    outputs: list[str] | None = None  # the outputs asked for by name; None: every one there is


def request_schema() -> dict[str, Any]:
    """The request's JSON schema with its definitions inlined, to embed in the OpenAPI document."""
    schema = InferenceRequest.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


def decode_request(body: bytes, header_length: str | None, spec: TensorSpec) -> DecodedRequest:
    """Parse a v2 request and check it against the model's spec; CPU work, run it off the event loop."""
    head, binary = _split(body, header_length)
    request = _parse(head)
    tensor = request.inputs[0]
    _check_against(tensor, spec)
    explain = request.parameters.get("explain", False)
    if not isinstance(explain, bool):
        raise InvalidInput(f"parameters.explain must be true or false, got {json.dumps(explain)}")
    requested = request.outputs or []
    offered = [spec.output, *(spec.explanation_outputs if explain else ())]
    unknown = [output.name for output in requested if output.name not in offered]
    if unknown:
        hint = "" if explain or not spec.explanation_outputs else (
            f" (and, with parameters.explain, {', '.join(map(repr, spec.explanation_outputs))})")
        raise InvalidInput(f"no output named {', '.join(map(repr, unknown))}; the outputs are "
                           f"{', '.join(map(repr, offered))}{hint}")
    binary_output = bool(request.parameters.get("binary_data_output")) or any(
        output.parameters.get("binary_data") for output in requested
    )
    values = _values(tensor, binary)
    names = [output.name for output in requested] or None
    return DecodedRequest(request.id, values.reshape(tensor.shape[0], *spec.item_shape), binary_output, explain,
                          names)


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON head and the binary section after it."""
    if header_length is None:
        return body, b""
    try:
        split = int(header_length)
    except ValueError:
        raise MalformedRequest(f"{HEADER_LENGTH} {header_length!r} is not a number") from None
    if not 0 < split <= len(body):
        raise MalformedRequest(f"{HEADER_LENGTH} {split} does not fit a body of {len(body)} bytes")
    return body[:split], body[split:]


def _parse(head: bytes) -> InferenceRequest:
    try:
        return InferenceRequest.model_validate(json.loads(head))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedRequest("the inference request is not valid JSON") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidInput(f"malformed inference request: {problems}") from None


def _check_against(tensor: InputTensor, spec: TensorSpec) -> None:
    """What the model's own metadata decides: name, datatype, shape and how many rows."""
    if tensor.name != spec.name:
        raise InvalidInput(f"the model takes one input named {spec.name!r}, not {tensor.name!r}",
                           accepted=f"inputs: [{{name: {spec.name}, datatype: {spec.datatype}}}]")
    if tensor.datatype != spec.datatype:
        raise InvalidInput(f"input {tensor.name!r} must be {spec.datatype}, not {tensor.datatype}")
    shapes = [[-1, *spec.item_shape]]
    if not spec.item_shape:  # one element per row: [n, 1] is the same tensor as [n]
        shapes.append([-1, 1])
    if not any(len(tensor.shape) == len(s) and tensor.shape[1:] == s[1:] for s in shapes):
        wanted = " or ".join("[" + ", ".join("n" if d == -1 else str(d) for d in s) + "]" for s in shapes)
        raise InvalidInput(f"input {tensor.name!r} must have shape {wanted}, not {tensor.shape}")
    if not 1 <= tensor.shape[0] <= spec.max_rows:
        raise InvalidInput(f"input {tensor.name!r}: batch of {tensor.shape[0]}; 1 to {spec.max_rows} accepted")


def _values(tensor: InputTensor, binary: bytes) -> np.ndarray:
    """The tensor's elements as a flat array of its datatype, from binary data or from JSON `data`."""
    count = int(np.prod(tensor.shape))
    size = tensor.parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > len(binary):
            raise MalformedRequest(f"input {tensor.name!r}: binary_data_size {size} overruns the binary data")
        if size != len(binary):
            raise MalformedRequest(f"input {tensor.name!r}: {len(binary) - size} bytes follow its binary data")
        return _from_binary(tensor, binary, count)
    if tensor.data is not None:
        return _from_json(tensor, count)
    raise InvalidInput(f"input {tensor.name!r} has neither 'data' nor binary data")


def _from_binary(tensor: InputTensor, raw: bytes, count: int) -> np.ndarray:
    if tensor.datatype == "BYTES":
        items, position = [], 0
        while position < len(raw):
            if position + 4 > len(raw):
                raise MalformedRequest(f"input {tensor.name!r}: a BYTES element's length is cut off")
            (length,) = struct.unpack_from("<I", raw, position)
            position += 4
            if position + length > len(raw):
                raise MalformedRequest(f"input {tensor.name!r}: a BYTES element is cut off")
            items.append(raw[position : position + length])
            position += length
        if len(items) != count:
            raise InvalidInput(f"input {tensor.name!r}: {len(items)} elements for shape {tensor.shape}")
        array = np.empty(count, dtype=object)
        array[:] = items
        return array
    dtype = DATATYPES[tensor.datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(f"input {tensor.name!r}: {len(raw)} bytes do not make shape {tensor.shape} "
                           f"of {tensor.datatype}")
    return np.frombuffer(raw, dtype=dtype)  # a view of the body: no copy until the batch is made


def _from_json(tensor: InputTensor, count: int) -> np.ndarray:
    flat = list(_flatten(tensor.data or []))
    if len(flat) != count:
        raise InvalidInput(f"input {tensor.name!r}: {len(flat)} elements for shape {tensor.shape}")
    if tensor.datatype == "BYTES":
        if not all(isinstance(item, str) for item in flat):
            raise InvalidInput(f"input {tensor.name!r}: BYTES data must be strings")
        array = np.empty(count, dtype=object)
        array[:] = [item.encode("utf-8") for item in flat]
        return array
    dtype = DATATYPES[tensor.datatype]
    if dtype.kind == "b":
        valid, wanted = all(isinstance(item, bool) for item in flat), "true or false"
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        valid = all(isinstance(item, int) and not isinstance(item, bool) and info.min <= item <= info.max
                    for item in flat)
        wanted = f"integers from {info.min} to {info.max}"
    else:
        valid, wanted = all(isinstance(item, int | float) and not isinstance(item, bool) for item in flat), "numbers"
    if not valid:
        raise InvalidInput(f"input {tensor.name!r}: {tensor.datatype} data must be {wanted}")
    return np.asarray(flat, dtype=dtype)


def _flatten(data: list[Any]) -> Any:
    for item in data:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def encode_response(
    model: str, version: int, request_id: str | None, tensors: dict[str, np.ndarray], binary: bool
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary output follows it. `tensors`: each
    output's name and values, in order (FP32 or INT32 arrays)."""
    outputs = []
    raws = []
    for name, values in tensors.items():
        datatype = "INT32" if values.dtype.kind in "iu" else "FP32"
        output: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(values.shape)}
        if binary:
            raw = np.ascontiguousarray(values, dtype=DATATYPES[datatype]).tobytes()
            output["parameters"] = {"binary_data_size": len(raw)}
            raws.append(raw)
        else:
            output["data"] = values.astype(DATATYPES[datatype]).ravel().tolist()
        outputs.append(output)
    response: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": outputs}
    if request_id is not None:
        response["id"] = request_id
    head = json.dumps(response).encode()
    return (head + b"".join(raws), len(head)) if binary else (head, None)
