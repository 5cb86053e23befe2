"""A confusion matrix as a small PNG heat map drawn straight from its counts with numpy.

Each cell is coloured by the share of its row (true class) it holds, on a square-root scale so
that a few dozen mistakes among a thousand still show, with the count written in it; the
classes are numbered along the top (predicted) and down the left (true).

Its size is the box TensorBoard shows it in, so it is never scaled down: Time Series fits every
image into a box `BOX_HEIGHT` pixels tall (TensorBoard 2.21, measured in Chromium: the box is
215 pixels at any window width, some 300 to 480 wide), so a 10-class matrix is 300 x 215 with
cells 28 wide and 19 tall, each holding its count in a 10-pixel font. The Images tab shows it
350 pixels wide, a little larger.

It is drawn at the end of every member of a sweep, so it is built for speed: a palette image
(a colour level per cell times an ink level per pixel) whose digits are stamped from glyphs
rendered once, so only the PNG encoding is left to Pillow. A matplotlib figure took a quarter
of a second; this takes a few milliseconds.
"""

import functools
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BOX_HEIGHT, BOX_WIDTH = 215, 300  # the image's size at most: TensorBoard's Time Series box
MAX_CELL = (30, 42)  # pixels a cell takes at most (height, width): few classes get these
MIN_TEXT_CELL = (15, 26)  # smaller cells (many classes) hold no count; the colour still shows it
TOP, LEFT = 25, 20  # pixels above the grid (axis name, class numbers) and left of it
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


def cell_size(k: int) -> tuple[int, int]:
    """Pixels (height, width) of each cell of a `k`-class matrix: the grid fills the box."""
    height = max(1, min(MAX_CELL[0], (BOX_HEIGHT - TOP) // k))
    return height, max(1, min(MAX_CELL[1], (BOX_WIDTH - LEFT) // k))


@functools.lru_cache(maxsize=4096)
def _cell_ink(text: str, cell: tuple[int, int]) -> np.ndarray:
    """The ink of a cell holding `text`: counts repeat (0 most of all), in a matrix and across
    the members of a sweep, so each is stamped once."""
    ink_CxC = np.zeros(cell, np.uint8)
    _stamp(ink_CxC, text, cell[1] / 2, cell[0] / 2)
    return ink_CxC


@functools.lru_cache(maxsize=16)
def _margin_ink(k: int, cell: tuple[int, int]) -> np.ndarray:
    """The ink of the margins (axis names and class numbers) of a `k`-class matrix."""
    (cell_h, cell_w), height, width = cell, TOP + k * cell[0], LEFT + k * cell[1]
    labels = Image.new("L", (width, TOP))
    draw = ImageDraw.Draw(labels)
    draw.text((LEFT + k * cell_w / 2, 0), "predicted", fill=255, font=_font(), anchor="ma")
    draw.text((1, 0), "true", fill=255, font=_font(), anchor="la")
    ink_HxW = np.zeros((height, width), np.uint8)
    ink_HxW[:TOP] = np.asarray(labels)
    digit = _glyphs()[0]["0"].shape[1]
    wide = digit * len(str(k - 1)) + 2
    for i in range(0, k, -(-wide // cell_w)):  # as many as fit across
        _stamp(ink_HxW, str(i), LEFT + i * cell_w + cell_w / 2, TOP - 6)
    for i in range(0, k, -(-_glyphs()[1] // cell_h)):  # and down
        _stamp(ink_HxW, str(i), LEFT - 3 - digit * len(str(i)) / 2, TOP + i * cell_h + cell_h / 2)
    ink_HxW.flags.writeable = False  # shared by every image of this size
    return ink_HxW


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def confusion_png(matrix_KxK: np.ndarray) -> tuple[bytes, int, int]:
    """The PNG of a confusion matrix (true class down, predicted across) with its height and
    width in pixels."""
    counts_KxK = np.asarray(matrix_KxK, np.float64)
    k = counts_KxK.shape[0]
    cell = cell_h, cell_w = cell_size(k)
    rows_K1 = counts_KxK.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares_KxK = np.sqrt(np.where(rows_K1 > 0, counts_KxK / rows_K1, 0.0))
    shades_KxK = np.rint(np.nan_to_num(np.clip(shares_KxK, 0, 1)) * (SHADES - 1)).astype(np.uint8)
    height, width = TOP + k * cell_h, LEFT + k * cell_w
    shade_HxW = np.full((height, width), SHADES, np.uint8)  # the margin's white
    shade_HxW[TOP:, LEFT:] = np.repeat(np.repeat(shades_KxK, cell_h, axis=0), cell_w, axis=1)
    ink_HxW = _margin_ink(k, cell).copy()
    if cell_h >= MIN_TEXT_CELL[0] and cell_w >= MIN_TEXT_CELL[1]:
        cells_KxKxHxW = np.stack([_cell_ink(_count(c), cell) for c in counts_KxK.ravel()])
        grid = cells_KxKxHxW.reshape(k, k, cell_h, cell_w).transpose(0, 2, 1, 3)
        ink_HxW[TOP:, LEFT:] = grid.reshape(k * cell_h, k * cell_w)
    index_HxW = shade_HxW * INKS + (ink_HxW.astype(np.uint16) * (INKS - 1) + 127) // 255
    image = Image.fromarray(index_HxW.astype(np.uint8))  # "L", made "P" by its palette
    image.putpalette(_palette())
    png = io.BytesIO()
    image.save(png, format="PNG", compress_level=3)
    return png.getvalue(), height, width
