"""The Open Inference Protocol (KServe v2 REST), served by the same registry and batchers.

Errors on these routes take the protocol's shape, `{"error": "..."}`: the routers use
`ProtocolRoute` (service.api.errors).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from contract.savedmodel import OUTPUT_NAME
from service.api.dependencies import InferenceDep, RegistryDep
from service.api.errors import ProtocolErrorResponse, ProtocolRoute
from service.api.errors import error_responses as _error_responses
from service.api.responses import served_by
from service.api.routing import routing_key
from service.api.v2_codec import HEADER_LENGTH, TensorSpec, decode_request, encode_response, request_schema
from service.core.inference import Inference
from service.core.versions import ModelVersion
from service.rollout.rollouts import Route

PLATFORM = "tensorflow_savedmodel"

health_router = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=ProtocolRoute)
router = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=ProtocolRoute)


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
async def read_model_metadata(name: ModelName, inference: InferenceDep) -> dict[str, Any]:
    return _metadata(inference, name, None)


@router.get("/models/{name}/versions/{version}", summary="Model version metadata", responses=error_responses(404))
async def read_version_metadata(name: ModelName, version: Version, inference: InferenceDep) -> dict[str, Any]:
    return _metadata(inference, name, version)


@router.get("/models/{name}/ready", summary="The model is ready", responses=error_responses(404))
async def read_model_ready(name: ModelName, registry: RegistryDep) -> dict[str, Any]:
    registry.model(name)
    return {"name": name, "ready": True}


@router.get("/models/{name}/versions/{version}/ready", summary="The model version is ready",
            responses=error_responses(404))
async def read_version_ready(name: ModelName, version: Version, inference: InferenceDep) -> dict[str, Any]:
    _version(inference, name, version)
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
async def infer(name: ModelName, request: Request, inference: InferenceDep) -> Response:
    return await _infer(request, inference, _route(inference, request, name, None))


@router.post("/models/{name}/versions/{version}/infer", summary="Run inference on a version",
             responses=_INFER_RESPONSES, openapi_extra=_INFER_BODY)
async def infer_version(name: ModelName, version: Version, request: Request, inference: InferenceDep) -> Response:
    return await _infer(request, inference, _route(inference, request, name, version))


def _version(inference: Inference, name: str, version: int | None) -> ModelVersion:
    """The version a metadata request names, else the one serving unpinned requests."""
    return inference.registry.get(name, inference.registry.model(name).task, version)


def _route(inference: Inference, request: Request, name: str, version: int | None) -> Route:
    return inference.route(name, inference.registry.model(name).task, version, routing_key(request))


def _metadata(inference: Inference, name: str, version: int | None) -> dict[str, Any]:
    served = _version(inference, name, version)
    spec = _spec(served)
    return {
        "name": name,
        "versions": [str(v) for v in sorted(inference.registry.model(name).loaded)],
        "platform": PLATFORM,
        "inputs": [{"name": spec.name, "datatype": spec.datatype, "shape": [-1, *spec.item_shape]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, len(served.labels)]}],
    }


def _spec(version: ModelVersion) -> TensorSpec:
    handler = version.handler
    outputs = handler.v2_explanation_outputs if handler.explain_refusal() is None else ()
    return TensorSpec(name=handler.kind.input_name, datatype=handler.v2_datatype, item_shape=handler.item_shape(),
                      max_rows=handler.max_items, output=OUTPUT_NAME, explanation_outputs=outputs)


async def _infer(request: Request, inference: Inference, route: Route) -> Response:
    version = route.version
    body = await request.body()
    length = request.headers.get(HEADER_LENGTH)
    decoded = await inference.offload("decode request", len(body), decode_request, body, length, _spec(version))
    prediction = await inference.predict_tensor(route, decoded.tensor, explain=decoded.explain)
    tensors = {OUTPUT_NAME: prediction.outputs}
    if prediction.explanations is not None:
        tensors |= version.handler.explanation_tensors(prediction.explanations)
    if decoded.outputs is not None:
        tensors = {name: tensors[name] for name in decoded.outputs}
    payload, header_length = encode_response(version.name, version.version, decoded.id, tensors,
                                             decoded.binary_output)
    if header_length is None:
        response = Response(payload, media_type="application/json")
    else:
        response = Response(payload, media_type="application/octet-stream",
                            headers={"Inference-Header-Content-Length": str(header_length)})
    served_by(response, prediction)
    return response
