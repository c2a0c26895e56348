"""The musetalk engine against a reimplementation of the public MuseTalk 1.5 inference.

The reference functions below are written from TMElyralab/MuseTalk's
``musetalk/utils/audio_processor.py`` (get_audio_feature, get_whisper_chunk),
``musetalk/models/unet.py`` (PositionalEncoding), ``musetalk/models/vae.py``
(preprocess_img, get_latents_for_unet, decode_latents) and the UNet call of
``scripts/inference.py``, step by step as they are there (numpy/einops-style reshapes,
cv2 colour conversion), so the engine's own vectorised code is checked against them.
Small random whisper / UNet / VAE configs of the real classes keep it fast; the numbers
must agree to 1e-5.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="diffusers (the [musetalk] extra) holds MuseTalk's UNet and VAE")

from heygem_daemon.engines.base import AudioClip, EngineConfig, Face  # noqa: E402
from heygem_daemon.engines.musetalk import MuseTalkEngine  # noqa: E402
from heygem_daemon.engines.musetalk_audio import frame_windows  # noqa: E402
from heygem_daemon.engines.musetalk_blend import EXTRA_MARGIN, NOSE_RIDGE, OUTLINE, crop_box, crops  # noqa: E402

from tests.support.media import sample_media  # noqa: E402
from tests.support.musetalk_weights import make_weights  # noqa: E402

SR = 16000


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> MuseTalkEngine:
    root = make_weights(tmp_path_factory.mktemp("musetalk") / "models")
    return MuseTalkEngine(EngineConfig(device="cpu", models={"musetalk": root}))


# -- the public code, re-written here ---------------------------------------------------------------
def reference_audio_prompts(samples: np.ndarray, engine: MuseTalkEngine, fps: int = 25) -> torch.Tensor:
    """audio_processor.get_audio_feature + get_whisper_chunk (left = right = 2) + PositionalEncoding."""
    segment_length = 30 * SR
    segments = [samples[i : i + segment_length] for i in range(0, len(samples), segment_length)]
    extractor, encoder = engine.models.feature_extractor, engine.models.whisper
    inputs = [extractor(s, return_tensors="pt", sampling_rate=SR).input_features for s in segments]
    left = right = 2
    per_frame = 2 * (left + right + 1)
    whisper_feature = torch.cat(
        [torch.stack(encoder(f, output_hidden_states=True).hidden_states, dim=2) for f in inputs], dim=1)
    multiplier = 50 / fps
    num_frames = math.floor(len(samples) / SR) * fps
    actual_length = math.floor(len(samples) / SR) * 50
    whisper_feature = whisper_feature[:, :actual_length, ...]
    padding_nums = math.floor(multiplier)
    whisper_feature = torch.cat([torch.zeros_like(whisper_feature[:, : padding_nums * left]), whisper_feature,
                                 torch.zeros_like(whisper_feature[:, : padding_nums * 3 * right])], 1)
    prompts = []
    for frame_index in range(num_frames):
        audio_index = math.floor(frame_index * multiplier)
        clip = whisper_feature[:, audio_index : audio_index + per_frame]
        assert clip.shape[1] == per_frame
        prompts.append(clip)
    stacked = torch.cat(prompts, dim=0)  # T, 10, layers, D
    b, c, h, w = stacked.shape
    stacked = stacked.reshape(b, c * h, w)  # rearrange 'b c h w -> b (c h) w'
    return reference_pe(stacked)


def reference_pe(x: torch.Tensor, d_model: int | None = None, max_len: int = 5000) -> torch.Tensor:
    d_model = d_model or x.shape[-1]
    pe = torch.zeros(max_len, d_model)
    position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return x + pe.unsqueeze(0)[:, : x.shape[1], :]


def reference_latents(crop_bgr: np.ndarray, engine: MuseTalkEngine) -> torch.Tensor:
    """vae.get_latents_for_unet on a 256×256 BGR crop (the posterior mean, as the engine takes)."""
    vae, scaling = engine.models.vae, engine.models.scaling_factor

    def preprocess(half_mask: bool) -> torch.Tensor:
        img = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB)
        x = np.asarray([img]) / 255.0
        x = torch.squeeze(torch.FloatTensor(np.transpose(x, (3, 0, 1, 2))))
        if half_mask:
            mask = torch.zeros((256, 256))
            mask[:128, :] = 1
            x = x * (mask > 0.5)
        x = (x - 0.5) / 0.5  # transforms.Normalize([0.5]*3, [0.5]*3)
        return x.unsqueeze(0)

    masked = vae.encode(preprocess(True)).latent_dist.mean * scaling
    ref = vae.encode(preprocess(False)).latent_dist.mean * scaling
    return torch.cat([masked, ref], dim=1)


def reference_generate(latents: torch.Tensor, prompts: torch.Tensor, engine: MuseTalkEngine) -> np.ndarray:
    """scripts/inference.py: unet at timestep 0, then vae.decode_latents (before its uint8 rounding)."""
    pred = engine.models.unet(latents, torch.tensor([0]), encoder_hidden_states=prompts).sample
    image = engine.models.vae.decode((1 / engine.models.scaling_factor) * pred).sample
    return (image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()


# -- the checks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds", [2.0, 31.0])
def test_audio_windows_equal_the_public_chunks(engine: MuseTalkEngine, seconds: float) -> None:
    rng = np.random.default_rng(int(seconds))
    samples = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    with torch.inference_mode():
        expected = reference_audio_prompts(samples, engine)
        features = engine.prepare(AudioClip(samples))
        ours = frame_windows(features.data, np.arange(len(expected)), 25.0) + engine._pe
    assert ours.shape == expected.shape
    assert ours.shape[0] == int(seconds * 25)
    assert ours.shape[1] == 10 * (engine.models.whisper.config.encoder_layers + 1)
    assert torch.max(torch.abs(ours - expected)).item() < 1e-5


def test_frames_past_the_audio_see_the_public_zero_padding(engine: MuseTalkEngine) -> None:
    samples = np.zeros(SR, np.float32)
    features = engine.prepare(AudioClip(samples))
    window = frame_windows(features.data, np.array([0, 24, 400]), 25.0)
    assert torch.all(window[0, :4 * 3] == 0)  # the first frame's two steps before the audio
    assert torch.all(window[2] == 0)  # long after the end: nothing but padding


def test_latents_and_unet_step_equal_the_public_code(engine: MuseTalkEngine) -> None:
    rng = np.random.default_rng(1)
    crop = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    crop = cv2.GaussianBlur(crop, (0, 0), 3)  # face-like smoothness, not white noise
    with torch.inference_mode():
        expected = reference_latents(crop, engine)
        source = torch.from_numpy(crop[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255.0
        ours = engine.encode(source)
        assert ours.shape == (1, 8, 32, 32)
        assert torch.max(torch.abs(ours - expected)).item() < 1e-5
        prompts = reference_pe(torch.randn(1, 50, engine.models.audio_dim))
        image = engine.generate(ours, prompts).permute(0, 2, 3, 1).numpy()
        assert np.max(np.abs(image - reference_generate(ours, prompts, engine))) < 1e-5


def _face_2_frame() -> tuple[np.ndarray, Face]:
    from heygem_daemon.faces.tracker import FaceTracker

    capture = cv2.VideoCapture(str(sample_media("face_2.mp4")))
    ok, frame = capture.read()
    capture.release()
    assert ok
    face = FaceTracker().track([frame]).face(0, frame.shape[1], frame.shape[0])
    assert face is not None
    return frame, face


def test_crop_is_the_public_v15_box_and_close_to_its_lanczos_resize() -> None:
    frame, face = _face_2_frame()
    box = crop_box(face, frame.shape[1], frame.shape[0])
    assert box is not None
    marks = face.landmarks.astype(np.float64)  # type: ignore[union-attr]
    outline = marks[list(OUTLINE)]
    chin, nose = int(outline[:, 1].max()), int(marks[NOSE_RIDGE, 1])
    # get_landmark_and_bbox: nose ridge at the centre, chin at the bottom; v1.5 adds the margin
    assert (box.x0, box.x1) == (int(outline[:, 0].min()), int(outline[:, 0].max()))
    assert (box.y0, box.y1) == (nose - (chin - nose), chin + EXTRA_MARGIN)
    reference = cv2.resize(frame[box.y0 : box.y1, box.x0 : box.x1], (256, 256), interpolation=cv2.INTER_LANCZOS4)
    ours = crops(torch.from_numpy(frame)[None], [box])[0].flip(0).permute(1, 2, 0).mul(255).numpy()
    # antialiased bicubic vs Lanczos: within a grey level or two on average
    assert np.mean(np.abs(ours - reference.astype(np.float32))) < 2.0

