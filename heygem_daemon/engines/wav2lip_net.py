"""The Wav2Lip generator, laid out so the public checkpoints load strictly.

Module names and order mirror the published network (Prajwal et al., 2020) because
``load_state_dict`` matches parameters by name: ``face_encoder_blocks.3.1.conv_block.0.weight``
must mean the same layer here as in ``wav2lip.pth``.  The layer list is data (the
``*_SPEC`` tables) so the shape of the network can be read in one place.

Inputs: face (B, 6, 96, 96) = lower-half-masked crop ++ unmasked reference, BGR in [0, 1];
mel (B, 1, 80, 16).  Output: (B, 3, 96, 96) BGR in [0, 1].
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import EngineError, for_admin
from .state_dict import mismatches

#: (cin, cout, kernel, stride, padding, residual) for one Conv-BN-ReLU unit
ConvSpec = tuple[int, int, int, int | tuple[int, int], int, bool]
#: (cin, cout, kernel, stride, padding, output_padding) for one ConvTranspose-BN-ReLU unit
UpSpec = tuple[int, int, int, int, int, int]


def _res(channels: int) -> ConvSpec:
    return (channels, channels, 3, 1, 1, True)


# Seven encoder blocks: 96 → 48 → 24 → 12 → 6 → 3 → 1 pixels; each output is a skip.
FACE_ENCODER_SPEC: list[list[ConvSpec]] = [
    [(6, 16, 7, 1, 3, False)],
    [(16, 32, 3, 2, 1, False), _res(32), _res(32)],
    [(32, 64, 3, 2, 1, False), _res(64), _res(64), _res(64)],
    [(64, 128, 3, 2, 1, False), _res(128), _res(128)],
    [(128, 256, 3, 2, 1, False), _res(256), _res(256)],
    [(256, 512, 3, 2, 1, False), _res(512)],
    [(512, 512, 3, 1, 0, False), (512, 512, 1, 1, 0, False)],
]

# Thirteen layers: an (80 × 16) mel window down to a 512-d embedding at 1 × 1.
AUDIO_ENCODER_SPEC: list[ConvSpec] = [
    (1, 32, 3, 1, 1, False), _res(32), _res(32),
    (32, 64, 3, (3, 1), 1, False), _res(64), _res(64),
    (64, 128, 3, 3, 1, False), _res(128), _res(128),
    (128, 256, 3, (3, 2), 1, False), _res(256),
    (256, 512, 3, 1, 0, False), (512, 512, 1, 1, 0, False),
]  # fmt: skip

# Seven decoder blocks: an upsampling unit (block 0: a 1×1 conv) then residual units.
# Input channels count the encoder skip concatenated to the previous block's output.
FACE_DECODER_SPEC: list[tuple[UpSpec | ConvSpec, list[ConvSpec]]] = [
    ((512, 512, 1, 1, 0, False), []),
    ((1024, 512, 3, 1, 0, 0), [_res(512)]),
    ((1024, 512, 3, 2, 1, 1), [_res(512), _res(512)]),
    ((768, 384, 3, 2, 1, 1), [_res(384), _res(384)]),
    ((512, 256, 3, 2, 1, 1), [_res(256), _res(256)]),
    ((320, 128, 3, 2, 1, 1), [_res(128), _res(128)]),
    ((160, 64, 3, 2, 1, 1), [_res(64), _res(64)]),
]


class ConvUnit(nn.Module):
    """Conv2d + BatchNorm + ReLU; a residual unit adds its input before the ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride, padding: int, residual: bool) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class UpUnit(nn.Module):
    """ConvTranspose2d + BatchNorm + ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, output_padding: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _decoder_block(head: UpSpec | ConvSpec, tail: list[ConvSpec]) -> nn.Sequential:
    first: nn.Module = ConvUnit(*head) if isinstance(head[5], bool) else UpUnit(*head)  # type: ignore[arg-type]
    return nn.Sequential(first, *(ConvUnit(*spec) for spec in tail))


class Wav2LipNet(nn.Module):
    """The Wav2Lip generator (36.3 M parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList(
            nn.Sequential(*(ConvUnit(*spec) for spec in block)) for block in FACE_ENCODER_SPEC
        )
        self.audio_encoder = nn.Sequential(*(ConvUnit(*spec) for spec in AUDIO_ENCODER_SPEC))
        self.face_decoder_blocks = nn.ModuleList(_decoder_block(h, t) for h, t in FACE_DECODER_SPEC)
        self.output_block = nn.Sequential(
            ConvUnit(80, 32, 3, 1, 1, False), nn.Conv2d(32, 3, kernel_size=1, stride=1, padding=0), nn.Sigmoid()
        )

    def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """mel (B, 1, 80, 16), face (B, 6, 96, 96) → (B, 3, 96, 96) in [0, 1].

        Argument order follows the original ``forward(audio_sequences, face_sequences)``.
        """
        skips = []
        x = face
        for block in self.face_encoder_blocks:
            x = block(x)
            skips.append(x)
        x = self.audio_encoder(mel)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), skips.pop()), dim=1)
        return self.output_block(x)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- checkpoints ------------------------------------------------------------------------


def load_checkpoint(path: Path) -> Wav2LipNet:
    """A Wav2LipNet in eval mode holding the weights of a public-layout checkpoint.

    Accepts ``{"state_dict": ..., "optimizer": ..., "global_step": ...}`` (as
    ``wav2lip.pth`` / ``wav2lip_gan.pth`` are saved, legacy or zip format) or a bare
    state dict; a DataParallel ``module.`` prefix is stripped.  ``weights_only=True``
    is enough for those files (tensors, dicts, lists, numbers), so no code in a
    checkpoint ever runs.
    """
    state = _state_dict(_read(path), path)
    net = Wav2LipNet()
    expected = net.state_dict()
    _fill_batch_counters(state, expected)
    problems = mismatches(state, expected)
    if problems:
        raise EngineError(
            f"The wav2lip checkpoint {path} does not fit the Wav2Lip network: {'; '.join(problems)}.",
            hint=for_admin("use the public wav2lip.pth or wav2lip_gan.pth (the 96x96 Wav2Lip generator, "
                           "not SyncNet or a discriminator)"),
        )
    net.load_state_dict(state, strict=True)
    return net.eval()


def _read(path: Path) -> Any:
    if not path.is_file():
        raise EngineError(
            f"The wav2lip checkpoint {path} does not exist or is not a file.",
            hint=for_admin("check models.wav2lip in daemon.toml, or HEYGEM_MODELS__WAV2LIP"),
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise EngineError(
            f"The wav2lip checkpoint {path} is not a readable PyTorch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no details'}).",
            hint=for_admin("the download may be incomplete or a web page: fetch wav2lip_gan.pth again"),
        ) from exc


def _state_dict(raw: Any, path: Path) -> dict[str, torch.Tensor]:
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EngineError(
            f"The wav2lip checkpoint {path} holds no state dict of tensors.",
            hint=for_admin("use the public wav2lip.pth or wav2lip_gan.pth"),
        )
    return {key.removeprefix("module."): value for key, value in state.items()}


def _fill_batch_counters(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    # BatchNorm's step counter is unused at inference; checkpoints written before
    # torch 0.4.1 lack it, and that alone must not reject good weights.
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
