"""Open Inference Protocol (KServe v2) tensors: JSON and the binary tensor data extension.

A v2 request is JSON, optionally followed by raw tensor bytes; the JSON's length is then
given in the `Inference-Header-Content-Length` header and each binary input says its size
in `parameters.binary_data_size`. BYTES elements in binary form are each a 4-byte
little-endian length followed by the bytes.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from service.errors import BadRequest, InvalidInput

HEADER_LENGTH = "inference-header-content-length"


class InputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    data: list[Any] | None = None


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] = Field(default_factory=dict)


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: list[InputTensor] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


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


def parse_request(body: bytes, header_length: str | None) -> tuple[InferenceRequest, bytes]:
    """Split the body into the JSON request and the binary section after it."""
    if header_length is not None:
        try:
            split = int(header_length)
        except ValueError:
            raise BadRequest(f"{HEADER_LENGTH} {header_length!r} is not a number") from None
        if not 0 < split <= len(body):
            raise BadRequest(f"{HEADER_LENGTH} {split} does not fit a body of {len(body)} bytes")
        head, binary = body[:split], body[split:]
    else:
        head, binary = body, b""
    try:
        return InferenceRequest.model_validate(json.loads(head)), binary
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("the inference request is not valid JSON") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidInput(f"malformed inference request: {problems}") from None


def decode_input(tensor: InputTensor, binary: bytes, offset: int) -> tuple[np.ndarray | list[bytes], int]:
    """The tensor's elements (a uint8 array, or a list of byte strings) and the next binary offset."""
    if any(dim < 0 for dim in tensor.shape):
        raise InvalidInput(f"input {tensor.name!r}: shape {tensor.shape} has a negative dimension")
    count = int(np.prod(tensor.shape)) if tensor.shape else 1
    size = tensor.parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise BadRequest(f"input {tensor.name!r}: binary_data_size {size} overruns the binary data")
        raw, offset = binary[offset : offset + size], offset + size
        elements = _from_binary(tensor, raw, count)
    elif tensor.data is not None:
        elements = _from_json(tensor, count)
    else:
        raise InvalidInput(f"input {tensor.name!r} has neither 'data' nor binary data")
    return elements, offset


def _from_binary(tensor: InputTensor, raw: bytes, count: int) -> np.ndarray | list[bytes]:
    if tensor.datatype == "BYTES":
        items, position = [], 0
        while position < len(raw):
            if position + 4 > len(raw):
                raise BadRequest(f"input {tensor.name!r}: a BYTES element's length is cut off")
            (length,) = struct.unpack_from("<I", raw, position)
            position += 4
            if position + length > len(raw):
                raise BadRequest(f"input {tensor.name!r}: a BYTES element is cut off")
            items.append(raw[position : position + length])
            position += length
        if len(items) != count:
            raise InvalidInput(f"input {tensor.name!r}: {len(items)} elements for shape {tensor.shape}")
        return items
    # The route only lets BYTES and UINT8 through, so what is left is one byte per element.
    if len(raw) != count:
        raise InvalidInput(f"input {tensor.name!r}: {len(raw)} bytes do not make shape {tensor.shape}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(tensor.shape)


def _from_json(tensor: InputTensor, count: int) -> np.ndarray | list[bytes]:
    flat = list(_flatten(tensor.data or []))
    if len(flat) != count:
        raise InvalidInput(f"input {tensor.name!r}: {len(flat)} elements for shape {tensor.shape}")
    if tensor.datatype == "BYTES":
        if not all(isinstance(item, str) for item in flat):
            raise InvalidInput(f"input {tensor.name!r}: BYTES data must be strings")
        return [item.encode("utf-8") for item in flat]
    if not all(isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 255 for item in flat):
        raise InvalidInput(f"input {tensor.name!r}: UINT8 data must be integers from 0 to 255")
    return np.asarray(flat, dtype=np.uint8).reshape(tensor.shape)


def _flatten(data: list[Any]) -> Any:
    for item in data:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def encode_response(
    model: str, version: int, request_id: str | None, name: str, values: np.ndarray, binary: bool
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary output follows it."""
    output: dict[str, Any] = {"name": name, "datatype": "FP32", "shape": list(values.shape)}
    raw = b""
    if binary:
        raw = np.ascontiguousarray(values, dtype="<f4").tobytes()
        output["parameters"] = {"binary_data_size": len(raw)}
    else:
        output["data"] = values.astype(np.float32).ravel().tolist()
    response: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": [output]}
    if request_id is not None:
        response["id"] = request_id
    head = json.dumps(response).encode()
    return (head + raw, len(head)) if binary else (head, None)
