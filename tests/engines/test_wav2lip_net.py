"""The Wav2Lip network and its checkpoint loader (no real weights: tests save their own)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from heygem_daemon.engines.base import EngineConfig
from heygem_daemon.engines.wav2lip import MISSING_CHECKPOINT, Wav2LipEngine
from heygem_daemon.engines.wav2lip_net import Wav2LipNet, load_checkpoint, parameter_count
from heygem_daemon.errors import EngineError


@pytest.fixture(scope="module")
def net() -> Wav2LipNet:
    torch.manual_seed(1)
    model = Wav2LipNet()
    # give BatchNorm non-default statistics so a load that skipped them would show
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.9, 1.1)
    return model.eval()


def _public_layout(model: torch.nn.Module, prefix: str = "") -> dict:
    """A checkpoint laid out as wav2lip.pth is: weights, Adam state, step counters."""
    optimizer = torch.optim.Adam(list(model.parameters())[:4], lr=1e-4)
    return {
        "state_dict": {prefix + key: value for key, value in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "global_step": 0,
        "global_epoch": 0,
    }


def test_parameter_count_is_36_3_million(net: Wav2LipNet) -> None:
    """The network has the public Wav2Lip generator's 36.3 M parameters."""
    assert round(parameter_count(net) / 1e6, 1) == 36.3


def test_layer_groups_match_public_layout(net: Wav2LipNet) -> None:
    """7 encoder blocks, 13 audio layers, 7 decoder blocks, a 3-part output block."""
    assert (len(net.face_encoder_blocks), len(net.audio_encoder)) == (7, 13)
    assert (len(net.face_decoder_blocks), len(net.output_block)) == (7, 3)
    keys = net.state_dict().keys()
    assert "face_decoder_blocks.1.0.conv_block.0.weight" in keys
    assert "output_block.1.weight" in keys
    assert tuple(net.state_dict()["face_decoder_blocks.1.0.conv_block.0.weight"].shape) == (1024, 512, 3, 3)


def test_forward_shapes_and_range(net: Wav2LipNet) -> None:
    """mel (B,1,80,16) + face (B,6,96,96) → (B,3,96,96) in [0, 1]."""
    with torch.inference_mode():
        out = net(torch.randn(2, 1, 80, 16), torch.rand(2, 6, 96, 96))
    assert tuple(out.shape) == (2, 3, 96, 96)
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
def test_public_layout_loads_strictly(net: Wav2LipNet, tmp_path: Path, prefix: str, zipfile: bool) -> None:
    """A public-layout checkpoint (with or without DataParallel prefix, zip or legacy) loads with weights_only."""
    path = tmp_path / "wav2lip_gan.pth"
    torch.save(_public_layout(net, prefix), path, _use_new_zipfile_serialization=zipfile)
    loaded = load_checkpoint(path)
    expected = net.state_dict()
    assert all(torch.equal(expected[k], v) for k, v in loaded.state_dict().items())
    assert not loaded.training


def test_wrong_shape_names_the_key(net: Wav2LipNet, tmp_path: Path) -> None:
    """A checkpoint with a mis-shaped tensor fails with an EngineError naming that key."""
    layout = _public_layout(net)
    layout["state_dict"]["audio_encoder.0.conv_block.0.weight"] = torch.zeros(32, 1, 5, 5)
    path = tmp_path / "bad.pth"
    torch.save(layout, path)
    with pytest.raises(EngineError, match=r"audio_encoder\.0\.conv_block\.0\.weight is \(32, 1, 5, 5\)"):
        load_checkpoint(path)


def test_foreign_network_names_missing_keys(tmp_path: Path) -> None:
    """Weights of another network fail with the first missing and unexpected keys named."""
    path = tmp_path / "syncnet.pth"
    torch.save({"state_dict": torch.nn.Conv2d(1, 2, 3).state_dict()}, path)
    with pytest.raises(EngineError, match=r"missing key.*face_encoder_blocks\.0\.0.*unexpected key.*weight"):
        load_checkpoint(path)


def test_missing_file_and_web_page(tmp_path: Path) -> None:
    """A missing file or a downloaded HTML page gives an EngineError, not a traceback."""
    with pytest.raises(EngineError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    page = tmp_path / "wav2lip.pth"
    page.write_text("<!DOCTYPE html><html>Sign in</html>")
    with pytest.raises(EngineError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(page)


def test_engine_without_checkpoint_says_what_to_configure() -> None:
    """No models.wav2lip configured → the EngineError tells the admin the setting to add."""
    with pytest.raises(EngineError) as caught:
        Wav2LipEngine(EngineConfig(device="cpu"))
    assert str(caught.value) == MISSING_CHECKPOINT
    assert "HEYGEM_MODELS__WAV2LIP" in str(caught.value)
