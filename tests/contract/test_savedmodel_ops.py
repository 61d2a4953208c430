"""SavedModel.op_types: the op types of serving_default, those inside the functions it calls included."""

from __future__ import annotations

from pathlib import Path

from contract.savedmodel import load_model
from tests.tiny_models import build_conv_image_model, build_image_model, build_text_model


def test_op_types_find_a_convolution_only_where_there_is_one(tmp_path: Path) -> None:
    conv = load_model(build_conv_image_model(tmp_path / "conv" / "1")).op_types()
    plain = load_model(build_image_model(tmp_path / "plain" / "1")).op_types()
    assert {"Conv2D", "MatMul", "Softmax"} <= conv
    assert "Softmax" in plain and not {"Conv2D", "MatMul"} & plain


def test_op_types_look_inside_called_functions(tmp_path: Path) -> None:
    # The text model's loop body lives in the graph's function library, not among its top-level nodes.
    ops = load_model(build_text_model(tmp_path / "text" / "1")).op_types()
    assert {"StringSplitV2", "Sigmoid"} <= ops
    assert ops & {"While", "StatelessWhile"}
