"""The LiteRT face-mesh pipeline's fixed parts: shipped models, anchors, region geometry, custom operators."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from heygem_daemon.faces import attention, facemesh
from heygem_daemon.faces.attention import AttentionMesh
from heygem_daemon.faces.facemesh import MODELS, Roi


def test_shipped_models_match_their_recorded_provenance():
    """Every model in faces/models/ is listed in its README with the sha256 it has, and vice versa."""
    readme = (MODELS / "README.md").read_text()
    recorded = dict(re.findall(r"\| `([\w.]+\.tflite)`[^|]*\|[^|]*\|[^|]*\| `([0-9a-f]{64})` \|", readme))
    shipped = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in MODELS.glob("*.tflite")}
    assert shipped == recorded
    assert {facemesh.DETECTOR_MODEL.name, facemesh.MESH_MODEL.name} == set(shipped)


def test_blazeface_anchors_cover_the_input_in_two_grids():
    """896 anchors: 2 per cell of a 16x16 grid, then 6 per cell of an 8x8 grid, centred in their cells."""
    anchors = facemesh._anchors()
    assert anchors.shape == (896, 2)
    assert np.allclose(anchors[0], [0.5 / 16, 0.5 / 16]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[512], [0.5 / 8, 0.5 / 8]) and np.allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_region_maps_its_corners_to_the_crop():
    """A turned region's corners land on the crop's corners and its centre on the crop's centre."""
    roi = Roi(cx=100.0, cy=50.0, side=40.0, angle=np.pi / 2)
    matrix = roi.to_crop(64)
    # turned a quarter clockwise (x along the frame's down): the crop's top-left is the square's top-right
    assert np.allclose(matrix @ [120.0, 30.0, 1.0], [0.0, 0.0], atol=1e-4)
    assert np.allclose(matrix @ [120.0, 70.0, 1.0], [64.0, 0.0], atol=1e-4)
    assert np.allclose(matrix @ [100.0, 50.0, 1.0], [32.0, 32.0], atol=1e-4)


def test_attention_mesh_runs_in_stages_around_its_custom_operators():
    """The attention model splits into LiteRT stages and MediaPipe's three operators, and gives all heads."""
    mesh = AttentionMesh(MODELS / "face_landmark_with_attention.tflite")
    customs = {step.name for step in mesh._steps if not isinstance(step, attention._Stage)}
    assert customs == set(attention.CUSTOM)
    outputs = mesh(np.full((192, 192, 3), 0.5, np.float32))
    sizes = {name: value.size for name, value in outputs.items()}
    assert sizes == {"output_mesh_identity": 1404, "output_lips": 160, "output_left_eye": 142,
                     "output_right_eye": 142, "output_left_iris": 10, "output_right_iris": 10, "conv_faceflag": 1}


def test_transform_landmarks_applies_the_matrix_rows():
    """TransformLandmarks maps (x, y) through the first two rows of the 4x4 matrix (z ignored)."""
    matrix = np.eye(4, dtype=np.float32)
    matrix[0, :] = [2.0, 0.0, 0.0, 3.0]
    matrix[1, :] = [0.0, 0.5, 0.0, -1.0]
    points = np.array([[[1.0, 2.0], [4.0, 8.0]]], np.float32)
    expected = np.array([[[5.0, 0.0], [11.0, 3.0]]], np.float32)
    assert np.allclose(attention._transform_landmarks(points, matrix), expected)


def test_transform_tensor_samples_inside_and_zeroes_outside():
    """TransformTensorBilinear with an identity grid copies the map; a grid shifted off the map reads zeros."""
    data = np.arange(4 * 4 * 2, dtype=np.float32).reshape(1, 4, 4, 2)
    identity = np.eye(4, dtype=np.float32)
    same = attention._transform_tensor(data, identity, {"output_height": 4, "output_width": 4})
    assert np.allclose(same, data)
    away = identity.copy()
    away[0, 3] = 10.0
    assert not attention._transform_tensor(data, away, {"output_height": 4, "output_width": 4}).any()
