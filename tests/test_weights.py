"""Loading the bundled weights: verified, and clear errors when missing or damaged."""

from __future__ import annotations

import pytest
import torch

from vidmatte import WeightsError, load_model
from vidmatte.weights import WEIGHTS_SHA256, default_weights_path, load_state_dict


def test_bundled_weights_load_and_verify():
    state = load_state_dict()
    assert sum(v.numel() for v in state.values()) == 3_736_072
    model = load_model()
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_state_dict(tmp_path / "nope.pt")


def test_truncated_file(tmp_path):
    data = default_weights_path().read_bytes()
    bad = tmp_path / "w.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="damaged"):
        load_state_dict(bad)
    with pytest.raises(WeightsError, match="cannot be read"):
        load_state_dict(bad, sha256=None)  # even without the hash, a cut file is reported, not a traceback


def test_wrong_hash(tmp_path):
    data = bytearray(default_weights_path().read_bytes())
    data[-100] ^= 0xFF
    bad = tmp_path / "w.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="damaged"):
        load_state_dict(bad, sha256=WEIGHTS_SHA256)


def test_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDMATTE_WEIGHTS", str(tmp_path / "elsewhere.pt"))
    with pytest.raises(WeightsError, match=r"elsewhere\.pt"):
        load_model()
