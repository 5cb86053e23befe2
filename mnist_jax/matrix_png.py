"""A confusion matrix as a small PNG heat map drawn straight from its counts with Pillow.

Each cell is a square of `CELL` pixels coloured by the share of its row (true class) it holds,
on a square-root scale so that a few dozen mistakes among a thousand still show, with the count
written in it; the classes are numbered along the top (predicted) and down the left (true).
About 330 pixels wide for 10 classes: readable at the size TensorBoard's Images tab and Time
Series cards show it, in a millisecond or two (a matplotlib figure took a quarter of a second,
which a 64-member sweep paid 64 times at its end).
"""

import functools
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CELL = 30  # pixels a side per class pair, at most (many classes get smaller cells)
MAX_SIDE = 600  # pixels the grid may take: more classes than fit get cells this / K wide
MIN_TEXT_CELL = 22  # below this a cell holds no count (the colour still shows it)
DIGIT = 6  # pixels a digit takes in the class numbers' font
MARGIN = 32  # pixels left of and above the grid, for the class numbers and the axis names
# Matplotlib's "Blues" at 0, 0.25, 0.5, 0.75 and 1: white to dark blue.
BLUES = np.array(
    [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]], np.float32
)
BACKGROUND, INK, LIGHT_INK = (255, 255, 255), (0, 0, 0), (255, 255, 255)


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def colours(shares_KxK: np.ndarray) -> np.ndarray:
    """`uint8 [K, K, 3]` colours for shares in [0, 1] (NaN as 0): the Blues ramp, interpolated."""
    at = np.nan_to_num(np.clip(shares_KxK, 0, 1)) * (len(BLUES) - 1)
    low = np.minimum(at.astype(int), len(BLUES) - 2)
    frac = (at - low)[..., None]
    return np.rint(BLUES[low] * (1 - frac) + BLUES[low + 1] * frac).astype(np.uint8)


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def confusion_png(matrix_KxK: np.ndarray) -> tuple[bytes, int, int]:
    """The PNG of a confusion matrix (true class down, predicted across) with its height and
    width in pixels."""
    counts_KxK = np.asarray(matrix_KxK, np.float64)
    k = counts_KxK.shape[0]
    cell = max(1, min(CELL, MAX_SIDE // k))
    rows_K1 = counts_KxK.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares_KxK = np.sqrt(np.where(rows_K1 > 0, counts_KxK / rows_K1, 0.0))
    grid_HxWx3 = np.repeat(np.repeat(colours(shares_KxK), cell, axis=0), cell, axis=1)
    side = MARGIN + k * cell
    pixels_HxWx3 = np.full((side, side, 3), BACKGROUND, np.uint8)
    pixels_HxWx3[MARGIN:, MARGIN:] = grid_HxWx3
    image = Image.fromarray(pixels_HxWx3)
    draw = ImageDraw.Draw(image)
    small, label = _font(10), _font(11)
    draw.text((MARGIN + k * cell / 2, 1), "predicted", fill=INK, font=label, anchor="ma")
    draw.text((2, 1), "true", fill=INK, font=label, anchor="la")
    numbered = range(0, k, -(-(DIGIT * len(str(k - 1)) + 2) // cell))  # as many as fit
    for i in numbered:
        middle = MARGIN + i * cell + cell / 2
        draw.text((middle, MARGIN - 2), str(i), fill=INK, font=small, anchor="md")
        draw.text((MARGIN - 4, middle), str(i), fill=INK, font=small, anchor="rm")
    if cell >= MIN_TEXT_CELL:
        for (i, j), count in np.ndenumerate(counts_KxK):
            ink = LIGHT_INK if shares_KxK[i, j] > 0.6 else INK
            centre = (MARGIN + j * cell + cell / 2, MARGIN + i * cell + cell / 2)
            draw.text(centre, _count(count), fill=ink, font=small, anchor="mm")
    png = io.BytesIO()
    image.save(png, format="PNG")
    return png.getvalue(), side, side
