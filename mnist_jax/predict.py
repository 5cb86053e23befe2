"""`python -m mnist_jax.predict CHECKPOINT_DIR IMAGE...`: a trained model's classes for images of
one's own, one line each on stdout, the three most probable first:

    seven.png: 7 0.998, 3 0.001, 2 0.000

Needs only the checkpoint, no data dir. An image is a PNG or JPEG file of any size (or a `.npy`
array): made grayscale (or RGB, as the dataset's images are), padded square with its own
background and resized to the dataset's image shape. MNIST's images, like the other datasets
here, are light ink on a dark ground; a photographed or drawn digit is dark ink on light paper,
so `--invert auto` (the default) inverts an image whose border is lighter than its middle
and says so on stderr (`--invert yes|no` decides instead). `--member N` picks a sweep's member
(from 0; 0 by default), `--ensemble` averages all members' probabilities.
"""

import argparse
import dataclasses
import json
import os
import sys

import numpy as np

from mnist_jax import files, trained
from mnist_jax.cli import Parser
from mnist_jax.config import ConfigError

TOP = 3  # classes shown per image
INVERT = ("auto", "yes", "no")


class ImageError(ConfigError):
    """An image that cannot be read; the message names it."""


@dataclasses.dataclass(frozen=True)
class Image:
    path: str
    pixels_HxWxC: np.ndarray  # as the dataset stores its images: uint8, or float as given
    inverted: bool


def read_image(path: str, image_shape: tuple[int, ...]) -> np.ndarray:
    """The file at `path` as `image_shape` (H, W, C): uint8 from a PNG or JPEG, a `.npy`'s own
    dtype (uint8 resized; float taken at the shape it must already have)."""
    if not os.path.isfile(path):
        raise ImageError(f"{path}: no such file")
    channels = image_shape[-1]
    if path.lower().endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ImageError(f"{path}: not a readable .npy array ({error})") from None
        array = array.reshape(array.shape[:2] + (-1,)) if array.ndim in (2, 3) else array
        if array.ndim != 3 or array.shape[2] != channels:
            raise ImageError(
                f"{path}: an array of shape {array.shape}; expected (H, W) or (H, W, {channels})"
            )
        if array.dtype != np.uint8:
            if array.shape != image_shape:
                raise ImageError(f"{path}: a {array.dtype} array must be {image_shape} already")
            return array.astype(np.float32)
        if array.shape == image_shape:
            return array
        return _resized(_pil_of(array), image_shape)
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(path) as opened:
            opened.load()
            picture = opened
    except (OSError, UnidentifiedImageError) as error:
        raise ImageError(f"{path}: not a readable image ({error})") from None
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        ground = PILImage.new("RGBA", picture.size, "white")  # a transparent ground is paper
        picture = PILImage.alpha_composite(ground, picture.convert("RGBA"))
    return _resized(picture.convert("L" if channels == 1 else "RGB"), image_shape)


def _pil_of(array_HxWxC: np.ndarray):
    from PIL import Image as PILImage

    return PILImage.fromarray(array_HxWxC[..., 0] if array_HxWxC.shape[2] == 1 else array_HxWxC)


def _resized(picture, image_shape: tuple[int, ...]) -> np.ndarray:
    """Padded square with the border's median colour (no digit is stretched), then resized."""
    from PIL import Image as PILImage

    height, width, channels = image_shape
    pixels = np.asarray(picture)
    side = max(picture.size)
    ground = tuple(int(v) for v in np.median(_border(pixels.reshape(*pixels.shape[:2], -1)), 0))
    square = PILImage.new(picture.mode, (side, side), ground[0] if channels == 1 else ground)
    square.paste(picture, ((side - picture.size[0]) // 2, (side - picture.size[1]) // 2))
    resized = np.asarray(square.resize((width, height), PILImage.Resampling.LANCZOS), np.uint8)
    return resized.reshape(height, width, channels)


def _border(pixels_HxWxC: np.ndarray) -> np.ndarray:
    """The outermost rows and columns' pixels `[P, C]`."""
    edges = [pixels_HxWxC[0], pixels_HxWxC[-1], pixels_HxWxC[:, 0], pixels_HxWxC[:, -1]]
    return np.concatenate(edges, 0)


def light_ground(pixels_HxWxC: np.ndarray) -> bool:
    """Whether the image is dark ink on a light ground: its border brighter than its mean."""
    pixels = pixels_HxWxC.astype(np.float32)
    return float(_border(pixels).mean()) > float(pixels.mean())


def prepare(path: str, image_shape, invert: str, say) -> Image:
    """The image at `path`, inverted as `invert` says (a uint8 image only)."""
    pixels = read_image(path, image_shape)
    flip = pixels.dtype == np.uint8 and (
        invert == "yes" or (invert == "auto" and light_ground(pixels))
    )
    if flip and invert == "auto":
        say(f"{path}: dark ink on a light ground: inverted (--invert no keeps it as it is)")
    return Image(path, 255 - pixels if flip else pixels, flip)


def top_classes(p_K: np.ndarray, class_names, k: int = TOP) -> list[tuple[str, float]]:
    """The `k` most probable classes, most probable first (ties by class order)."""
    order = np.argsort(-p_K, kind="stable")[:k]
    return [(class_names[i], float(p_K[i])) for i in order]


def line(path: str, top: list[tuple[str, float]]) -> str:
    return f"{path}: " + ", ".join(f"{name} {p:.3f}" for name, p in top)


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m mnist_jax.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint_dir", help="a --checkpoint-dir an experiment wrote")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG or .npy files")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--member", type=int, help="the sweep member to use, from 0 (default 0)")
    which.add_argument("--ensemble", action="store_true", help="the members' mean probability")
    p.add_argument(
        "--invert",
        choices=INVERT,
        default="auto",
        help="make dark ink on light paper light on dark, as the dataset's images are (default "
        "auto: when the image's border is lighter than its middle)",
    )
    p.add_argument("--json", dest="json_path", help="write the predictions as JSON here")
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    p = parser()
    args = p.parse_args(argv)
    if args.json_path and (why := files.destination_problem(args.json_path)):
        p.error(f"cannot write the JSON predictions to {args.json_path}: {why}")
    for path in args.images:  # a missing image is named before the checkpoint is read
        if not os.path.isfile(path):
            p.error(f"{path}: no such file")
    try:
        model = trained.load(args.checkpoint_dir, say)
        members = chosen(model, args.member, args.ensemble)
        dataset = members[0].dataset
        images = [prepare(path, dataset.image_shape, args.invert, say) for path in args.images]
    except ConfigError as error:
        p.exit(2, f"{p.prog}: error: {error}\n")
    batch_NxHxWxC = np.stack([image.pixels_HxWxC for image in images])
    p_NxK = np.mean([m.predict(batch_NxHxWxC) for m in members], axis=0)
    records = []
    for image, p_K in zip(images, p_NxK, strict=True):
        top = top_classes(p_K, dataset.class_names)
        print(line(image.path, top))
        records.append(
            {
                "image": image.path,
                "inverted": image.inverted,
                "top": [{"class": name, "probability": p} for name, p in top],
                "probabilities": dict(zip(dataset.class_names, map(float, p_K), strict=True)),
            }
        )
    if args.json_path:
        used = "ensemble" if args.ensemble else members[0].index
        report = {"checkpoint": args.checkpoint_dir, "member": used, "images": records}
        files.write_atomic(args.json_path, json.dumps(report, indent=1))
    return records


def say(text: str) -> None:
    """What was done to an image, or imported, on stderr: stdout holds the predictions."""
    print(text, file=sys.stderr)


def chosen(model: trained.Trained, member: int | None, ensemble: bool) -> list[trained.Member]:
    """The members whose probabilities are averaged: all, or the one asked (member 0)."""
    if ensemble:
        trained.shared({m.config.dataset for m in model.members})
        return list(model.members)
    number = member or 0
    saved = {m.index: m for m in model.members}
    if number not in saved:
        held = ", ".join(map(str, saved))
        raise ConfigError(f"--member {number}: the checkpoint holds saved members {held}")
    return [saved[number]]


if __name__ == "__main__":
    main()
