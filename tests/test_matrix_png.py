"""The confusion matrix's PNG: decodes, its size, the colours its counts give, in TensorBoard."""

import io

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from mnist_jax import matrix_png
from mnist_jax.writer import RunWriter


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def cell_colour(pixels: np.ndarray, i: int, j: int, cell: int = matrix_png.CELL) -> np.ndarray:
    """The colour at the corner of cell (true `i`, predicted `j`), clear of its count."""
    return pixels[matrix_png.MARGIN + i * cell + 1, matrix_png.MARGIN + j * cell + 1]


def test_the_png_decodes_at_its_stated_size_with_darker_cells_for_larger_shares():
    counts = np.array([[980, 0, 20], [0, 1000, 0], [0, 500, 500]], np.float32)
    png, height, width = matrix_png.confusion_png(counts)
    pixels = decoded(png)
    assert (
        pixels.shape == (height, width, 3) == (matrix_png.MARGIN + 3 * matrix_png.CELL,) * 2 + (3,)
    )
    assert cell_colour(pixels, 0, 1).tolist() == matrix_png.BLUES[0].tolist()  # none: white
    assert cell_colour(pixels, 1, 1).tolist() == matrix_png.BLUES[-1].tolist()  # all: dark
    brightness = {ij: int(cell_colour(pixels, *ij).sum()) for ij in [(0, 0), (2, 1), (0, 2)]}
    assert brightness[(0, 0)] < brightness[(2, 1)] < brightness[(0, 2)]
    m, c = matrix_png.MARGIN, matrix_png.CELL
    for i, j in [(0, 0), (0, 1)]:  # each count written in its cell, dark cell or white
        cell = pixels[m + i * c : m + (i + 1) * c, m + j * c : m + (j + 1) * c].reshape(-1, 3)
        assert len(np.unique(cell, axis=0)) > 2


def test_many_classes_get_smaller_cells_and_no_counts():
    counts = np.random.default_rng(0).integers(0, 50, (47, 47))
    png, height, width = matrix_png.confusion_png(counts)
    cell = matrix_png.MAX_SIDE // 47
    assert decoded(png).shape == (height, width, 3) and height == matrix_png.MARGIN + 47 * cell
    assert cell < matrix_png.MIN_TEXT_CELL


def test_an_empty_row_is_white_not_nan():
    png, _, _ = matrix_png.confusion_png(np.array([[0, 0], [3, 1]]))
    assert cell_colour(decoded(png), 0, 0).tolist() == matrix_png.BLUES[0].tolist()


def test_the_matrix_reaches_tensorboards_images_and_decodes(tmp_path):
    run = RunWriter(str(tmp_path), {})
    run.write_final(2, {"confusion_matrix": np.eye(10) * 1000})
    run.close()
    reader = event_accumulator.EventAccumulator(str(tmp_path / "test"))
    reader.Reload()
    (image,) = reader.Images("confusion_matrix")
    assert image.step == 2
    pixels = decoded(image.encoded_image_string)
    assert pixels.shape == (image.height, image.width, 3)


def test_counts_too_wide_for_their_cell_and_nan_still_make_an_image():
    counts = np.array([[1_234_567, np.nan], [0.25, -np.inf]])
    png, height, width = matrix_png.confusion_png(counts)
    assert decoded(png).shape == (height, width, 3)
