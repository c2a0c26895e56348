"""The MuseTalk 1.5 weights folder (``models.musetalk``): what must be in it, and loading it.

The folder is laid out as MuseTalk's ``download_weights.sh`` leaves its ``models/``:
``musetalkV15/unet.pth`` + ``musetalkV15/musetalk.json`` (the UNet and its diffusers
config), ``sd-vae/`` (stabilityai/sd-vae-ft-mse) and ``whisper/`` (openai/whisper-tiny).
Everything is read with ``local_files_only``: nothing is ever downloaded.  ``check_folder``
only looks at files (for ``validate``); ``load_models`` reads them, the UNet's keys and
shapes checked before any weight is copied, so a wrong file names what does not fit.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import EngineError, for_admin
from ..logging import get_logger
from .state_dict import mismatches

log = get_logger()

KEY = "models.musetalk"
EXTRA = "heygem-daemon[musetalk]"
UNET_FILE = Path("musetalkV15") / "unet.pth"
UNET_CONFIG = Path("musetalkV15") / "musetalk.json"
VAE_DIR = Path("sd-vae")
WHISPER_DIR = Path("whisper")
VAE_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
WHISPER_WEIGHTS = ("model.safetensors", "pytorch_model.bin")

MISSING_FOLDER = (
    'The musetalk engine is not set up on this daemon: it has no weights. Use engine = "builtin", '
    "or ask the administrator. (For the administrator: set models.musetalk = \"/path/to/MuseTalk/models\" "
    "in daemon.toml, or HEYGEM_MODELS__MUSETALK; see docs/musetalk.md.)"
)


def _admin(remedy: str) -> str:
    return for_admin(f"{remedy}; {KEY} must be MuseTalk's models/ folder as download_weights.sh leaves it "
                     "(docs/musetalk.md)")


def require_diffusers() -> None:
    """Raise EngineError naming the extra when diffusers (the UNet and VAE classes) is missing."""
    try:
        import diffusers  # noqa: F401
    except ImportError as exc:
        raise EngineError(
            f"The musetalk engine needs the diffusers package, which is not installed ({exc}).",
            hint=for_admin(f"pip install '{EXTRA}' (diffusers) into the daemon's environment"),
        ) from exc


def check_folder(folder: Path | None) -> None:
    """Raise EngineError naming the first missing or unreadable part; reads only small files."""
    if folder is None:
        raise EngineError(MISSING_FOLDER)
    root = Path(folder)
    if not root.is_dir():
        raise EngineError(f"{KEY} = {root} does not exist or is not a folder.", hint=_admin("check the path"))
    for part in (UNET_FILE, UNET_CONFIG):
        if not (root / part).is_file():
            raise EngineError(f"{KEY}: {part} is missing in {root}.", hint=_admin(f"put the MuseTalk 1.5 {part.name} there"))
    unet_config(root)
    _need_config(root / VAE_DIR, "sd-vae", VAE_WEIGHTS)
    _need_config(root / WHISPER_DIR, "whisper", WHISPER_WEIGHTS)
    if not (root / WHISPER_DIR / "preprocessor_config.json").is_file():
        raise EngineError(f"{KEY}: whisper/preprocessor_config.json is missing in {root}.",
                          hint=_admin("copy whisper-tiny's preprocessor_config.json too"))


def _need_config(folder: Path, name: str, weights: tuple[str, ...]) -> None:
    if not (folder / "config.json").is_file():
        raise EngineError(f"{KEY}: {name}/config.json is missing in {folder.parent}.", hint=_admin(f"fill {name}/"))
    if not any((folder / w).is_file() for w in weights):
        raise EngineError(f"{KEY}: {name}/ has no weights ({' or '.join(weights)}) in {folder.parent}.",
                          hint=_admin(f"fill {name}/"))


def unet_config(root: Path) -> dict[str, Any]:
    """musetalk.json as a dict of UNet2DConditionModel arguments (diffusers' private keys dropped)."""
    path = Path(root) / UNET_CONFIG
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineError(f"{KEY}: {UNET_CONFIG} is not readable JSON ({exc}).", hint=_admin("fetch it again")) from exc
    if not isinstance(raw, dict) or "in_channels" not in raw:
        raise EngineError(f"{KEY}: {UNET_CONFIG} is not a UNet2DConditionModel config.", hint=_admin("fetch it again"))
    return {k: v for k, v in raw.items() if not k.startswith("_")}


@dataclass
class MuseTalkModels:
    """The three networks, on their device, in eval mode (typed Any: diffusers' and
    transformers' classes carry their configs as dynamic attributes)."""

    unet: Any  # diffusers UNet2DConditionModel
    vae: Any  # diffusers AutoencoderKL
    whisper: Any  # transformers WhisperModel's encoder
    feature_extractor: Any
    #: VAE latent scale (sd-vae-ft-mse: 0.18215)
    scaling_factor: float
    #: whisper width = the UNet's cross-attention width
    audio_dim: int
    parameters: int


def load_models(root: Path, device: torch.device, dtype: torch.dtype) -> MuseTalkModels:
    """Read the whole folder; EngineError (naming the part) on anything that does not fit."""
    require_diffusers()
    check_folder(root)
    from diffusers import AutoencoderKL
    from transformers import WhisperFeatureExtractor, WhisperModel

    unet = load_unet(root)
    # without accelerate, diffusers warns on every load that it cannot save memory: ask for the plain load
    vae = _from_folder(AutoencoderKL, root / VAE_DIR, "sd-vae", low_cpu_mem_usage=False)
    whisper = _from_folder(WhisperModel, root / WHISPER_DIR, "whisper").encoder
    extractor = _from_folder(WhisperFeatureExtractor, root / WHISPER_DIR, "whisper (preprocessor_config.json)")
    _check_fit(unet, vae, whisper, root)
    parameters = sum(p.numel() for m in (unet, vae, whisper) for p in m.parameters())
    # fp32 is what they are made in; casting to it anyway makes diffusers warn about every model
    nets = [(m.to(device=device) if dtype == torch.float32 else m.to(device=device, dtype=dtype))
            .eval().requires_grad_(False) for m in (unet, vae, whisper)]
    return MuseTalkModels(
        unet=nets[0], vae=nets[1], whisper=nets[2], feature_extractor=extractor,
        scaling_factor=float(getattr(vae.config, "scaling_factor", 0.18215)),
        audio_dim=int(whisper.config.d_model), parameters=parameters,
    )


def _from_folder(cls: Any, folder: Path, name: str, **options: Any) -> Any:
    try:
        # a local folder path and local_files_only: from_pretrained can never reach the hub
        return cls.from_pretrained(str(folder), local_files_only=True, **options)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EngineError(f"{KEY}: {name}/ in {folder.parent} cannot be loaded ({first}).",
                          hint=_admin(f"fill {name}/ again from its source")) from exc


def load_unet(root: Path) -> Any:
    """UNet2DConditionModel(**musetalk.json) holding unet.pth, its keys and shapes checked first."""
    require_diffusers()
    from diffusers import UNet2DConditionModel

    config = unet_config(root)
    try:
        unet: Any = UNet2DConditionModel(**config)
    except (TypeError, ValueError) as exc:
        raise EngineError(f"{KEY}: {UNET_CONFIG} does not describe a UNet2DConditionModel ({exc}).",
                          hint=_admin("use MuseTalk 1.5's musetalk.json")) from exc
    path = Path(root) / UNET_FILE
    state = _read_state(path)
    problems = mismatches(state, unet.state_dict())
    if problems:
        raise EngineError(f"{KEY}: {UNET_FILE} does not fit the UNet of {UNET_CONFIG}: {'; '.join(problems)}.",
                          hint=_admin("use MuseTalk 1.5's unet.pth with its own musetalk.json"))
    unet.load_state_dict(state, strict=True)
    return unet


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        # weights_only: the file is tensors in dicts, so no code in it ever runs; mmap spares
        # a second 3.4 GB copy while the weights are copied into the network
        raw = _torch_load(path)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else "no details"
        raise EngineError(f"{KEY}: {UNET_FILE} is not a readable PyTorch file ({type(exc).__name__}: {first}).",
                          hint=_admin("the download may be incomplete: fetch unet.pth again")) from exc
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EngineError(f"{KEY}: {UNET_FILE} holds no state dict of tensors.", hint=_admin("fetch unet.pth again"))
    return {key.removeprefix("module."): value for key, value in state.items()}


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        # files in torch's legacy (pre-1.6) format cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def _check_fit(unet: Any, vae: Any, whisper: Any, root: Path) -> None:
    """The three parts must agree: 2×latent channels in, latents out, whisper width = cross-attention."""
    latent = int(vae.config.latent_channels)
    problems = []
    if int(unet.config.in_channels) != 2 * latent:
        problems.append(f"the UNet takes {unet.config.in_channels} channels, the VAE's latents need {2 * latent}")
    if int(unet.config.out_channels) != latent:
        problems.append(f"the UNet gives {unet.config.out_channels} channels, the VAE decodes {latent}")
    if int(unet.config.cross_attention_dim) != int(whisper.config.d_model):
        problems.append(f"the UNet attends to {unet.config.cross_attention_dim}-wide audio, "
                        f"whisper gives {whisper.config.d_model}")
    if problems:
        raise EngineError(f"{KEY}: the parts in {root} do not fit together: {'; '.join(problems)}.",
                          hint=_admin("use musetalkV15, sd-vae-ft-mse and whisper-tiny from the same download"))
