"""Augmentations of the training batches, registered by name: `augment=shift augment.pixels=2`.

An augmentation is `fn(key, x_BxHxWxC, *, settings) -> x_BxHxWxC`, run inside the compiled
epoch on every training batch, for each member with a key of its own (so members of different
seeds draw differently, and every step draws afresh); evaluation never sees it. One of one's
own is registered from one's own module, as a model is:

    @AUGMENTS.register("flip")
    def flip(key, x_BxHxWxC):
        ...
"""

import jax
import jax.numpy as jnp

from mnist_jax.registry import Registry

AUGMENTS = Registry("augment", keyword_only=True)


@AUGMENTS.register("none")
def none(key: jax.Array, x_BxHxWxC: jax.Array) -> jax.Array:
    """The batch as it is."""
    del key
    return x_BxHxWxC


def _check_shift(settings) -> str | None:
    pixels = settings["pixels"]
    if not (isinstance(pixels, int) and not isinstance(pixels, bool) and pixels >= 0):
        return f"pixels takes a whole number of at least 0, got {pixels!r}"
    return None


@AUGMENTS.register("shift", check=_check_shift)
def shift(key: jax.Array, x_BxHxWxC: jax.Array, *, pixels: int = 2) -> jax.Array:
    """Each image moved by its own random whole offset of at most `pixels` rows and columns,
    the edge filled with zeros (the background of scaled or raw pixels)."""
    batch, height, width, _ = x_BxHxWxC.shape
    offsets_Bx2 = jax.random.randint(key, (batch, 2), -pixels, pixels + 1)
    padded = jnp.pad(x_BxHxWxC, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)))

    def moved(image_HxWxC, offset_2):
        start = (pixels - offset_2[0], pixels - offset_2[1], 0)
        return jax.lax.dynamic_slice(image_HxWxC, start, (height, width, image_HxWxC.shape[-1]))

    return jax.vmap(moved)(padded, offsets_Bx2)
