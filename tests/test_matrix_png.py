"""The confusion matrix's PNG: decodes, its size, the colours its counts give, in TensorBoard."""

import io

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from mnist_jax import matrix_png
from mnist_jax.writer import RunWriter


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def cell_pixels(pixels: np.ndarray, i: int, j: int, k: int) -> np.ndarray:
    """The pixels of cell (true `i`, predicted `j`) of a `k`-class matrix."""
    h, w = matrix_png.cell_size(k)
    top, left = matrix_png.TOP + i * h, matrix_png.LEFT + j * w
    return pixels[top : top + h, left : left + w]


def cell_colour(pixels: np.ndarray, i: int, j: int, k: int) -> np.ndarray:
    """The colour at the corner of cell (true `i`, predicted `j`), clear of its count."""
    return cell_pixels(pixels, i, j, k)[1, 1]


def test_the_png_decodes_at_its_stated_size_with_darker_cells_for_larger_shares():
    counts = np.array([[980, 0, 20], [0, 1000, 0], [0, 500, 500]], np.float32)
    png, height, width = matrix_png.confusion_png(counts)
    pixels = decoded(png)
    h, w = matrix_png.cell_size(3)
    assert (
        pixels.shape == (height, width, 3) == (matrix_png.TOP + 3 * h, matrix_png.LEFT + 3 * w, 3)
    )
    assert cell_colour(pixels, 0, 1, 3).tolist() == matrix_png.BLUES[0].tolist()  # none: white
    assert cell_colour(pixels, 1, 1, 3).tolist() == matrix_png.BLUES[-1].tolist()  # all: dark
    brightness = {ij: int(cell_colour(pixels, *ij, 3).sum()) for ij in [(0, 0), (2, 1), (0, 2)]}
    assert brightness[(0, 0)] < brightness[(2, 1)] < brightness[(0, 2)]
    for i, j in [(0, 0), (0, 1)]:  # each count written in its cell, dark cell or white
        assert len(np.unique(cell_pixels(pixels, i, j, 3).reshape(-1, 3), axis=0)) > 2


def test_ten_classes_fill_tensorboards_image_box_with_every_count_written():
    """Time Series shows every image in a box 215 pixels tall (TensorBoard 2.21, Chromium):
    a larger image is scaled down until its counts cannot be read."""
    counts = np.diag(np.full(10, 1135.0)) + 7
    png, height, width = matrix_png.confusion_png(counts)
    assert (height, width) == (matrix_png.BOX_HEIGHT, matrix_png.BOX_WIDTH) == (215, 300)
    h, w = matrix_png.cell_size(10)
    assert h >= matrix_png.MIN_TEXT_CELL[0] and w >= matrix_png.MIN_TEXT_CELL[1]
    pixels = decoded(png)
    for i, j in [(0, 0), (9, 9), (3, 7)]:  # "1142" and "7" each inked in its cell
        assert len(np.unique(cell_pixels(pixels, i, j, 10).reshape(-1, 3), axis=0)) > 2
    glyphs, glyph_height = matrix_png._glyphs()
    assert sum(glyphs[c].shape[1] for c in "1142") <= w and glyph_height <= h


def test_many_classes_get_smaller_cells_and_no_counts():
    counts = np.random.default_rng(0).integers(0, 50, (47, 47))
    png, height, width = matrix_png.confusion_png(counts)
    h, w = matrix_png.cell_size(47)
    assert (
        decoded(png).shape
        == (height, width, 3)
        == (matrix_png.TOP + 47 * h, matrix_png.LEFT + 47 * w, 3)
    )
    assert height <= matrix_png.BOX_HEIGHT and width <= matrix_png.BOX_WIDTH
    assert h < matrix_png.MIN_TEXT_CELL[0]


def test_an_empty_row_is_white_not_nan():
    png, _, _ = matrix_png.confusion_png(np.array([[0, 0], [3, 1]]))
    assert cell_colour(decoded(png), 0, 0, 2).tolist() == matrix_png.BLUES[0].tolist()


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
