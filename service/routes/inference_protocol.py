"""The Open Inference Protocol (KServe v2 REST), served by the same registry and batchers.

Errors on these routes take the protocol's shape, `{"error": "..."}` (see service.errors).
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from service.artifacts import IMAGE_TASK, INPUT_NAME, OUTPUT_NAME, ImageInput
from service.dependencies import RegistryDep, SettingsDep
from service.errors import InvalidInput, ProtocolErrorResponse
from service.errors import error_responses as _error_responses
from service.registry import ModelRegistry, ServedModel
from service.tensors import HEADER_LENGTH, decode_input, encode_response, parse_request, request_schema

PLATFORM = "tensorflow_savedmodel"
_DATATYPE = {IMAGE_TASK: "UINT8"}  # every other task takes text: BYTES

health_router = APIRouter(prefix="/v2", tags=["open inference protocol"])
router = APIRouter(prefix="/v2", tags=["open inference protocol"])

def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return _error_responses(*statuses, model=ProtocolErrorResponse)


ModelName = Annotated[str, Path(max_length=200)]
Version = Annotated[int, Path(ge=1)]


@health_router.get("/health/live", summary="The server is live")
async def read_live() -> dict[str, bool]:
    return {"live": True}


@health_router.get("/health/ready", summary="The server is ready (400 when not, as the protocol says)",
                   responses={400: {"description": "Not ready."}})
async def read_ready(registry: RegistryDep) -> JSONResponse:
    return JSONResponse({"ready": registry.ready}, status_code=200 if registry.ready else 400)


@router.get("", summary="Server metadata")
async def read_server_metadata(request: Request) -> dict[str, Any]:
    return {"name": "model-serving", "version": request.app.version, "extensions": ["binary_tensor_data"]}


@router.get("/models/{name}", summary="Model metadata", responses=error_responses(404))
async def read_model_metadata(name: ModelName, registry: RegistryDep) -> dict[str, Any]:
    return _metadata(registry, name, None)


@router.get("/models/{name}/versions/{version}", summary="Model version metadata", responses=error_responses(404))
async def read_version_metadata(name: ModelName, version: Version, registry: RegistryDep) -> dict[str, Any]:
    return _metadata(registry, name, version)


@router.get("/models/{name}/ready", summary="The model is ready", responses=error_responses(404))
async def read_model_ready(name: ModelName, registry: RegistryDep) -> dict[str, Any]:
    registry.entry(name)
    return {"name": name, "ready": True}


@router.get("/models/{name}/versions/{version}/ready", summary="The model version is ready",
            responses=error_responses(404))
async def read_version_ready(name: ModelName, version: Version, registry: RegistryDep) -> dict[str, Any]:
    _served(registry, name, version)
    return {"name": name, "version": str(version), "ready": True}


_INFER_RESPONSES = error_responses(400, 404, 413, 422, 500, 503, 504)
_INFER_BODY = {
    "requestBody": {
        "required": True,
        "description": "A v2 inference request; with the binary tensor extension, JSON then tensor bytes.",
        "content": {"application/json": {"schema": request_schema()}},
    }
}


@router.post("/models/{name}/infer", summary="Run inference", responses=_INFER_RESPONSES, openapi_extra=_INFER_BODY)
async def infer(name: ModelName, request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    return await _infer(request, _served(registry, name, None), settings.max_files, settings.max_texts)


@router.post("/models/{name}/versions/{version}/infer", summary="Run inference on a version",
             responses=_INFER_RESPONSES, openapi_extra=_INFER_BODY)
async def infer_version(
    name: ModelName, version: Version, request: Request, registry: RegistryDep, settings: SettingsDep
) -> Response:
    return await _infer(request, _served(registry, name, version), settings.max_files, settings.max_texts)


def _served(registry: ModelRegistry, name: str, version: int | None) -> ServedModel:
    return registry.get(name, registry.entry(name).task, version)


def _metadata(registry: ModelRegistry, name: str, version: int | None) -> dict[str, Any]:
    served = _served(registry, name, version)
    card = served.card
    input_shape = [-1, card.input.height, card.input.width, 3] if isinstance(card.input, ImageInput) else [-1]
    datatype = _DATATYPE.get(card.task, "BYTES")
    return {
        "name": name,
        "versions": [str(v) for v in sorted(registry.entry(name).loaded)],
        "platform": PLATFORM,
        "inputs": [{"name": INPUT_NAME[card.task], "datatype": datatype, "shape": input_shape}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, len(card.labels)]}],
    }


async def _infer(request: Request, served: ServedModel, max_images: int, max_texts: int) -> Response:
    request.state.model = served.name
    inference, binary = parse_request(await request.body(), request.headers.get(HEADER_LENGTH))
    card = served.card
    expected_name, expected_type = INPUT_NAME[card.task], _DATATYPE.get(card.task, "BYTES")
    if len(inference.inputs) != 1 or inference.inputs[0].name != expected_name:
        raise InvalidInput(f"{served.name} takes one input named {expected_name!r}",
                           accepted=f"inputs: [{{name: {expected_name}, datatype: {expected_type}}}]")
    tensor = inference.inputs[0]
    if tensor.datatype != expected_type:
        raise InvalidInput(f"input {tensor.name!r} must be {expected_type}, not {tensor.datatype}")
    if isinstance(card.input, ImageInput):
        want = [card.input.height, card.input.width, 3]
        if len(tensor.shape) != 4 or tensor.shape[1:] != want:
            raise InvalidInput(f"input {tensor.name!r} must have shape [n, {', '.join(map(str, want))}], "
                               f"not {tensor.shape}")
        limit = max_images
    else:
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise InvalidInput(f"input {tensor.name!r} must have shape [n] or [n, 1], not {tensor.shape}")
        limit = max_texts
    if not 1 <= tensor.shape[0] <= limit:
        raise InvalidInput(f"input {tensor.name!r}: batch of {tensor.shape[0]}; 1 to {limit} accepted")
    requested = inference.outputs or []
    if any(output.name != OUTPUT_NAME for output in requested):
        raise InvalidInput(f"the only output is {OUTPUT_NAME!r}")
    binary_output = bool(inference.parameters.get("binary_data_output")) or any(
        output.parameters.get("binary_data") for output in requested
    )
    elements, _ = decode_input(tensor, binary, 0)
    answer = await served.batcher.submit(list(elements))
    request.state.batch_size = answer.batch_size
    body, header_length = encode_response(served.name, served.version, inference.id, OUTPUT_NAME,
                                          np.stack(answer.outputs), binary_output)
    if header_length is None:
        return Response(body, media_type="application/json")
    return Response(body, media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(header_length)})
