"""models.musetalk: the folder is checked part by part, unet.pth key by key, and nothing else runs.

Every message must name ``models.musetalk`` and the part that is missing or wrong, so an
administrator can fix the folder without reading code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers", reason="diffusers (the [musetalk] extra) holds MuseTalk's UNet and VAE")

from heygem_daemon.engines.base import EngineConfig  # noqa: E402
from heygem_daemon.engines.musetalk_weights import check_folder, load_unet  # noqa: E402
from heygem_daemon.engines.registry import EngineRegistry  # noqa: E402
from heygem_daemon.errors import EngineError  # noqa: E402

from tests.support.musetalk_weights import make_weights, small_unet_config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_weights(tmp_path_factory.mktemp("musetalk") / "models")


@pytest.fixture
def folder(weights: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(weights, copy)
    return copy


def test_a_complete_folder_passes_and_its_unet_loads(weights: Path) -> None:
    check_folder(weights)
    unet = load_unet(weights)
    assert unet.config.in_channels == 8 and unet.config.out_channels == 4


@pytest.mark.parametrize("part, named", [
    ("musetalkV15/unet.pth", "musetalkV15/unet.pth"),
    ("musetalkV15/musetalk.json", "musetalkV15/musetalk.json"),
    ("sd-vae/config.json", "sd-vae/config.json"),
    ("sd-vae/diffusion_pytorch_model.safetensors", "sd-vae/ has no weights"),
    ("whisper/model.safetensors", "whisper/ has no weights"),
    ("whisper/preprocessor_config.json", "whisper/preprocessor_config.json"),
])
def test_each_missing_part_is_named(folder: Path, part: str, named: str) -> None:
    (folder / part).unlink()
    with pytest.raises(EngineError) as caught:
        check_folder(folder)
    assert "models.musetalk" in str(caught.value) and named in str(caught.value)


def test_no_folder_configured_says_how_to_set_it() -> None:
    with pytest.raises(EngineError, match="models.musetalk"):
        EngineRegistry(EngineConfig(models={})).check("musetalk")


def test_a_unet_of_another_shape_names_its_mismatched_keys(folder: Path) -> None:
    from diffusers import UNet2DConditionModel

    other = {k: v for k, v in small_unet_config().items() if not k.startswith("_")}
    other["block_out_channels"] = [32, 96]
    state = UNet2DConditionModel(**other).state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["conv_in.weight"]
    torch.save(state, folder / "musetalkV15" / "unet.pth")
    with pytest.raises(EngineError) as caught:
        load_unet(folder)
    text = str(caught.value)
    assert "models.musetalk" in text and "unet.pth does not fit" in text
    assert "missing key(s) (conv_in.weight)" in text
    assert "unexpected key(s) (extra.weight)" in text
    assert "shape mismatch" in text and "expected (64," in text


def test_a_truncated_unet_file_is_not_readable(folder: Path) -> None:
    path = folder / "musetalkV15" / "unet.pth"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(EngineError, match="unet.pth is not a readable PyTorch file"):
        load_unet(folder)


def test_parts_that_do_not_fit_together_are_named(folder: Path) -> None:
    config = json.loads((folder / "musetalkV15" / "musetalk.json").read_text())
    config["cross_attention_dim"] = 32
    (folder / "musetalkV15" / "musetalk.json").write_text(json.dumps(config))
    from diffusers import UNet2DConditionModel

    torch.save(UNet2DConditionModel(**{k: v for k, v in config.items() if not k.startswith("_")}).state_dict(),
               folder / "musetalkV15" / "unet.pth")
    with pytest.raises(EngineError, match="attends to 32-wide audio, whisper gives 64"):
        EngineRegistry(EngineConfig(models={"musetalk": folder})).get("musetalk")


def test_without_diffusers_the_engine_names_the_extra(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers -> ImportError
    with pytest.raises(EngineError, match=r"heygem-daemon\[musetalk\]"):
        EngineRegistry(EngineConfig(models={"musetalk": weights})).check("musetalk")


def test_validate_without_weights_exits_non_zero_naming_the_key(tmp_path: Path, media_dir: Path) -> None:
    job = tmp_path / "inbox" / "job"
    job.mkdir(parents=True)
    shutil.copy(media_dir / "face_2.mp4", job / "face.mp4")
    shutil.copy(media_dir / "audio_1.wav", job / "voice.wav")
    (job / "job.toml").write_text('engine = "musetalk"\n', encoding="utf-8")
    config = tmp_path / "daemon.toml"
    config.write_text(f'inbox = "{tmp_path / "inbox"}"\noutbox = "{tmp_path / "outbox"}"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "heygem_daemon.cli", "validate", "--config", str(config), str(job)],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "PROBLEM engine musetalk" in done.stdout and "models.musetalk" in done.stdout


def _doctor(tmp_path: Path, capsys: pytest.CaptureFixture[str], **models: Path) -> dict[str, str]:
    import argparse

    from heygem_daemon.commands import doctor
    from heygem_daemon.settings import Settings

    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "out").mkdir(exist_ok=True)
    doctor(Settings(inbox=tmp_path / "in", outbox=tmp_path / "out", device="cpu", models=models), argparse.Namespace())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    return {line.split("] ", 1)[1].split(":", 1)[0]: line for line in lines}


def test_doctor_loads_the_folder_and_names_a_missing_part(folder: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    line = _doctor(tmp_path, capsys, musetalk=folder)["engine musetalk"]
    assert line.startswith("[ok]") and '"precision": "fp32"' in line and '"device": "cpu"' in line
    (folder / "sd-vae" / "config.json").unlink()
    line = _doctor(tmp_path, capsys, musetalk=folder)["engine musetalk"]
    assert line.startswith("[FAIL]") and "models.musetalk: sd-vae/config.json is missing" in line
