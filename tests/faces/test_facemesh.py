"""The LiteRT face-mesh pipeline's fixed parts: shipped models, anchors, region geometry, custom operators."""

from __future__ import annotations

import hashlib
import re

import cv2
import numpy as np
import pytest

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
    """The attention model splits into LiteRT stages and MediaPipe's three operators (the three
    regions' samplers of the one feature map run as one step), and gives all heads."""
    mesh = AttentionMesh(MODELS / "face_landmark_with_attention.tflite")
    customs = {step.name for step in mesh._steps if isinstance(step, attention._CustomOp)}
    samplers = [step for step in mesh._steps if isinstance(step, attention._Samplers)]
    assert customs | {"TransformTensorBilinear"} == set(attention.CUSTOM)
    assert len(samplers) == 1 and len(samplers[0].matrices) == 3
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


def test_transform_tensor_on_the_last_row_and_column_reads_the_map_and_past_it_zero():
    """A sample exactly on the map's last row/column is the map's value (its neighbour beyond
    the edge has weight 0); one a fraction past the edge is outside and reads zero."""
    data = np.arange(4 * 4 * 2, dtype=np.float32).reshape(1, 4, 4, 2)
    shifted = np.eye(4, dtype=np.float32)
    shifted[0, 3] = shifted[1, 3] = 3.0  # output (0, 0) samples map (3, 3)
    corner = attention._transform_tensor(data, shifted, {"output_height": 1, "output_width": 1})
    assert np.array_equal(corner[0, 0, 0], data[0, 3, 3])
    shifted[0, 3] = 3.25
    assert not attention._transform_tensor(data, shifted, {"output_height": 1, "output_width": 1}).any()


def test_exact_shrink_is_an_integer_block_ratio_or_nothing():
    """720p and 1080p (landscape or portrait) shrink to 640 px by whole 2x2 / 3x3 blocks; a frame
    within 640 px needs none (1); a fractional ratio (854x480) is not exact (0)."""
    assert facemesh.exact_shrink((720, 1280, 3), 640) == 2
    assert facemesh.exact_shrink((1080, 1920, 3), 640) == 3
    assert facemesh.exact_shrink((1920, 1080, 3), 640) == 3
    assert facemesh.exact_shrink((512, 512, 3), 640) == 1
    assert facemesh.exact_shrink((480, 854, 3), 640) == 0


@pytest.mark.parametrize("size, shrink", [((1280, 720), 2), ((1920, 1080), 3)])
def test_a_crop_shrunk_around_the_face_is_the_crop_of_the_frame_shrunk_whole(face_1_frames, size, shrink):
    """The mesh's crop taken from a full-size frame, shrinking only the region it reads, has the
    bytes of the crop from the frame shrunk whole with INTER_AREA, for regions inside the frame,
    across its edges, of every crop factor, turned or not."""
    rng = np.random.default_rng(7)
    for frame in face_1_frames[:3]:
        full = np.zeros((size[1], size[0], 3), np.uint8)
        x = (size[0] - frame.shape[1]) // 2
        full[: min(size[1], frame.shape[0]), x : x + frame.shape[1]] = frame[: size[1]]
        small = cv2.resize(full, (size[0] // shrink, size[1] // shrink), interpolation=cv2.INTER_AREA)
        for _ in range(12):
            roi = Roi(rng.uniform(-60, small.shape[1] + 60), rng.uniform(-60, small.shape[0] + 60),
                      rng.uniform(40, 1000), rng.uniform(-1.0, 1.0))
            assert np.array_equal(facemesh._crop(full, roi, 192, shrink), facemesh._crop(small, roi, 192))


def test_samplers_run_together_give_each_one_alone():
    """Sampling one map through several matrices in one pass gives, byte for byte, each matrix's
    sampling alone."""
    rng = np.random.default_rng(3)
    data = rng.normal(size=(1, 12, 12, 5)).astype(np.float32)
    matrices = [np.eye(4, dtype=np.float32) for _ in range(3)]
    for matrix in matrices:
        matrix[:2, :2] = rng.uniform(-0.9, 0.9, (2, 2))
        matrix[:2, 3] = rng.uniform(-2, 10, 2)
    options = {"output_height": 6, "output_width": 7}
    together = attention._transform_tensors(data, matrices, options)
    for matrix, got in zip(matrices, together):
        assert np.array_equal(got, attention._transform_tensor(data, matrix, options))
        assert got.shape == (1, 6, 7, 5)
