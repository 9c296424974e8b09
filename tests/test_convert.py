"""The converter reproduces the shipped weights byte for byte from the reference graph."""

from __future__ import annotations

import hashlib

import pytest

from vidmatte.convert import convert, save_state
from vidmatte.weights import WEIGHTS_SHA256, default_weights_path


def test_converter_reproduces_shipped_weights(reference_onnx, tmp_path):
    out = tmp_path / "w.pt"
    digest = save_state(convert(reference_onnx), out)
    assert digest == WEIGHTS_SHA256
    assert hashlib.sha256(default_weights_path().read_bytes()).hexdigest() == WEIGHTS_SHA256


def test_converter_refuses_a_graph_of_another_shape(reference_onnx):
    onnx = pytest.importorskip("onnx")
    model = onnx.load_model_from_string(reference_onnx)
    # drop the first conv: every later pairing is off by one and must be caught
    first = next(i for i, n in enumerate(model.graph.node) if n.op_type == "Conv")
    del model.graph.node[first]
    with pytest.raises(ValueError, match=r"convolutions|does not match"):
        convert(model.SerializeToString())
