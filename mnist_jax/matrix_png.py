"""A confusion matrix as a small PNG heat map drawn straight from its counts with numpy.

Each cell is a square of `CELL` pixels coloured by the share of its row (true class) it holds,
on a square-root scale so that a few dozen mistakes among a thousand still show, with the count
written in it; the classes are numbered along the top (predicted) and down the left (true).
About 330 pixels wide for 10 classes: readable at the size TensorBoard's Images tab and Time
Series cards show it.

It is drawn at the end of every member of a sweep, so it is built for speed: a palette image
(a colour level per cell times an ink level per pixel) whose digits are stamped from glyphs
rendered once, so only the PNG encoding is left to Pillow. A matplotlib figure took a quarter
of a second; this takes a few milliseconds.
"""

import functools
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CELL = 30  # pixels a side per class pair, at most (many classes get smaller cells)
MAX_SIDE = 600  # pixels the grid may take: more classes than fit get cells this / K wide
MIN_TEXT_CELL = 22  # below this a cell holds no count (the colour still shows it)
MARGIN = 32  # pixels left of and above the grid, for the class numbers and the axis names
FONT_SIZE = 10
# Matplotlib's "Blues" at 0, 0.25, 0.5, 0.75 and 1: white to dark blue.
BLUES = np.array(
    [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]], np.float32
)
SHADES = 31  # colour levels of a cell's share; one more level is the white margin
INKS = 8  # levels of a pixel's ink (the glyphs' anti-aliasing): SHADES + 1 times INKS = 256
LIGHT_INK_FROM = 0.6  # a cell's share from which its count is written white, not black
CHARACTERS = "0123456789.e+-nainf"  # what `_count` writes ("nan", "-inf" too)


def _palette() -> list[int]:
    """Colour of each (level, ink) index: the level's colour blended towards its ink."""
    shares = np.arange(SHADES) / (SHADES - 1)
    background = np.vstack([colours(shares), [[255, 255, 255]]]).astype(np.float32)
    light = shares > LIGHT_INK_FROM
    ink = np.vstack([np.where(light[:, None], 255.0, 0.0).repeat(3, 1), [[0, 0, 0]]])
    weight = (np.arange(INKS) / (INKS - 1))[None, :, None]
    blended = background[:, None] * (1 - weight) + ink[:, None] * weight
    return np.rint(blended).astype(np.uint8).ravel().tolist()


def colours(shares: np.ndarray) -> np.ndarray:
    """`uint8 [..., 3]` colours for shares in [0, 1] (NaN as 0): the Blues ramp, interpolated."""
    at = np.nan_to_num(np.clip(shares, 0, 1)) * (len(BLUES) - 1)
    low = np.minimum(at.astype(int), len(BLUES) - 2)
    frac = (at - low)[..., None]
    return np.rint(BLUES[low] * (1 - frac) + BLUES[low + 1] * frac).astype(np.uint8)


@functools.cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=FONT_SIZE)


@functools.cache
def _glyphs() -> tuple[dict[str, np.ndarray], int]:
    """Each character's ink (`uint8 [H, advance]`, 0 to 255) on one baseline, and H."""
    font = _font()
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (FONT_SIZE, 2)
    height, glyphs = ascent + descent, {}
    for char in CHARACTERS:
        width = max(1, round(font.getlength(char)))
        image = Image.new("L", (width, height))
        ImageDraw.Draw(image).text((0, ascent), char, fill=255, font=font, anchor="ls")
        glyphs[char] = np.asarray(image)
    return glyphs, height


def _stamp(ink_HxW: np.ndarray, text: str, x: float, y: float) -> None:
    """Writes `text` (of `CHARACTERS`) centred on (x, y) into the ink layer."""
    glyphs, height = _glyphs()
    width = sum(glyphs[c].shape[1] for c in text)
    left, top = max(0, round(x - width / 2)), max(0, round(y - height / 2))  # cut on the right
    for char in text:
        glyph = glyphs[char]
        area = ink_HxW[top : top + height, left : left + glyph.shape[1]]
        np.maximum(area, glyph[: area.shape[0], : area.shape[1]], out=area)
        left += glyph.shape[1]


@functools.lru_cache(maxsize=4096)
def _cell_ink(text: str, cell: int) -> np.ndarray:
    """The ink of a cell holding `text`: counts repeat (0 most of all), in a matrix and across
    the members of a sweep, so each is stamped once."""
    ink_CxC = np.zeros((cell, cell), np.uint8)
    _stamp(ink_CxC, text, cell / 2, cell / 2)
    return ink_CxC


@functools.lru_cache(maxsize=16)
def _margin_ink(k: int, cell: int) -> np.ndarray:
    """The ink of the margins (axis names and class numbers) of a `k`-class matrix."""
    side = MARGIN + k * cell
    labels = Image.new("L", (side, MARGIN))
    draw = ImageDraw.Draw(labels)
    draw.text((MARGIN + k * cell / 2, 1), "predicted", fill=255, font=_font(), anchor="ma")
    draw.text((2, 1), "true", fill=255, font=_font(), anchor="la")
    ink_HxW = np.zeros((side, side), np.uint8)
    ink_HxW[:MARGIN] = np.asarray(labels)
    digit = _glyphs()[0]["0"].shape[1]
    for i in range(0, k, -(-(digit * len(str(k - 1)) + 2) // cell)):  # as many as fit
        middle = MARGIN + i * cell + cell / 2
        _stamp(ink_HxW, str(i), middle, MARGIN - 8)
        _stamp(ink_HxW, str(i), MARGIN - 4 - digit * len(str(i)) / 2, middle)
    ink_HxW.flags.writeable = False  # shared by every image of this size
    return ink_HxW


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def confusion_png(matrix_KxK: np.ndarray) -> tuple[bytes, int, int]:
    """The PNG of a confusion matrix (true class down, predicted across) with its height and
    width in pixels."""
    counts_KxK = np.asarray(matrix_KxK, np.float64)
    k = counts_KxK.shape[0]
    cell = max(1, min(CELL, MAX_SIDE // k))
    rows_K1 = counts_KxK.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares_KxK = np.sqrt(np.where(rows_K1 > 0, counts_KxK / rows_K1, 0.0))
    shades_KxK = np.rint(np.nan_to_num(np.clip(shares_KxK, 0, 1)) * (SHADES - 1)).astype(np.uint8)
    side = MARGIN + k * cell
    shade_HxW = np.full((side, side), SHADES, np.uint8)  # the margin's white
    shade_HxW[MARGIN:, MARGIN:] = np.repeat(np.repeat(shades_KxK, cell, axis=0), cell, axis=1)
    ink_HxW = _margin_ink(k, cell).copy()
    if cell >= MIN_TEXT_CELL:
        cells_KxKxCxC = np.stack([_cell_ink(_count(c), cell) for c in counts_KxK.ravel()])
        grid = cells_KxKxCxC.reshape(k, k, cell, cell).transpose(0, 2, 1, 3)
        ink_HxW[MARGIN:, MARGIN:] = grid.reshape(k * cell, k * cell)
    index_HxW = shade_HxW * INKS + (ink_HxW.astype(np.uint16) * (INKS - 1) + 127) // 255
    image = Image.fromarray(index_HxW.astype(np.uint8))  # "L", made "P" by its palette
    image.putpalette(_palette())
    png = io.BytesIO()
    image.save(png, format="PNG", compress_level=3)
    return png.getvalue(), side, side
