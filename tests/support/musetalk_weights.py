"""Random MuseTalk 1.5 weights in the public ``models/`` layout, for tests and demos.

``real=True`` uses the published architectures (musetalk.json, sd-vae-ft-mse's and
whisper-tiny's configs: 850 M + 84 M + 8 M (encoder) parameters, 3.4 GB of fp32 UNet);
otherwise small configs of the same classes keep tests fast.  The layout, the file
formats and the key names are the real ones either way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

#: train_codes/musetalk.json (= models/musetalkV15/musetalk.json) of TMElyralab/MuseTalk
MUSETALK_JSON: dict[str, Any] = {
    "_class_name": "UNet2DConditionModel",
    "_diffusers_version": "0.6.0.dev0",
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 384,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 8,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

#: stabilityai/sd-vae-ft-mse config.json (the arguments that differ from diffusers' defaults)
SD_VAE: dict[str, Any] = {
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 256,
}

#: openai/whisper-tiny's encoder-relevant config
WHISPER_TINY: dict[str, Any] = {
    "d_model": 384, "encoder_layers": 4, "encoder_attention_heads": 6, "encoder_ffn_dim": 1536,
    "decoder_layers": 4, "decoder_attention_heads": 6, "decoder_ffn_dim": 1536,
    "num_mel_bins": 80, "max_source_positions": 1500, "max_target_positions": 448, "vocab_size": 51865,
}

SMALL_AUDIO_DIM = 64


def small_unet_config(audio_dim: int = SMALL_AUDIO_DIM) -> dict[str, Any]:
    return {
        "_class_name": "UNet2DConditionModel",
        "in_channels": 8, "out_channels": 4, "sample_size": 32, "layers_per_block": 1,
        "block_out_channels": [32, 64], "norm_num_groups": 32, "attention_head_dim": 8,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "cross_attention_dim": audio_dim,
    }


def make_weights(root: Path, *, real: bool = False, seed: int = 0) -> Path:
    """Fill ``root`` as download_weights.sh fills MuseTalk's models/; returns ``root``."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(seed)
    root = Path(root)
    config = MUSETALK_JSON if real else small_unet_config()
    unet_dir = root / "musetalkV15"
    unet_dir.mkdir(parents=True, exist_ok=True)
    (unet_dir / "musetalk.json").write_text(json.dumps(config, indent=2))
    unet = UNet2DConditionModel(**{k: v for k, v in config.items() if not k.startswith("_")})
    torch.save(unet.state_dict(), unet_dir / "unet.pth")
    del unet
    vae_args = SD_VAE if real else {**SD_VAE, "block_out_channels": [32, 32, 32, 32], "layers_per_block": 1}
    _randomise(AutoencoderKL(**vae_args)).save_pretrained(root / "sd-vae")
    whisper_args = WHISPER_TINY if real else {
        **WHISPER_TINY, "d_model": SMALL_AUDIO_DIM, "encoder_layers": 2, "encoder_attention_heads": 4,
        "encoder_ffn_dim": 128, "decoder_layers": 1, "decoder_attention_heads": 4, "decoder_ffn_dim": 128,
        "max_target_positions": 32,
    }
    WhisperModel(WhisperConfig(**whisper_args)).save_pretrained(root / "whisper")
    WhisperFeatureExtractor(feature_size=80).save_pretrained(root / "whisper")
    return root


def _randomise(vae: Any) -> Any:
    # a freshly made VAE decodes everything to near-grey; a little more spread in its
    # output layer makes pasted faces visibly the engine's in tests
    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(4.0)
    return vae
