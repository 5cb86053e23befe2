"""`mnist_jax.load(CHECKPOINT_DIR)`: a saved run's members with their parameters, to predict.

    trained = mnist_jax.load("ckpt")
    p_NxK = trained.members[0].predict(images_NxHxWxC)  # uint8, as the dataset stores them
    p_NxK = trained.predict(images_NxHxWxC)               # the members' mean probability

Every model is built from the checkpoint's own record (`run.json`): its config, its dataset's
classes and image shape, its dtype; the modules that registered its parts are imported first
(`locations`). This is the one place that reads a checkpoint's parameters: `evaluate`,
`predict` and `init_from` read them through `saved_chunks` or `load`.
"""

import dataclasses
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mnist_jax import (
    checkpoint,
    checkpoint_folder,
    data,
    datasets,
    devices,
    locations,
    progress,
    sweep,
)
from mnist_jax import spec as spec_module
from mnist_jax.config import Config, ConfigError
from mnist_jax.spec import TrainSpec


@dataclasses.dataclass(frozen=True)
class SavedChunk:
    """Members `first`..`first + len(members) - 1` of a run as their latest checkpoint left
    them (`saved`, on the host), with the spec of their compiled group."""

    group: sweep.Group
    first: int
    members: tuple[sweep.Member, ...]
    spec: TrainSpec
    saved: checkpoint.Saved


@dataclasses.dataclass(frozen=True)
class Member:
    """One trained network of a checkpoint."""

    index: int  # among the run's members, from 0
    config: Config
    hparams: dict[str, Any]  # the swept keys with this member's values
    params: Any  # a pytree of numpy arrays
    floats: dict[str, float]  # its float hyperparameters as trained last (PBT changes them)
    epoch: int  # epochs trained

    @property
    def dataset(self) -> datasets.Dataset:
        return datasets.get(self.config.dataset)

    @property
    def spec(self) -> TrainSpec:
        return spec_module.train_spec(self.config)

    def inputs(self, images_NxHxWxC: np.ndarray) -> np.ndarray:
        """Images as the dataset stores them (uint8 0..255, or float) scaled as the run saw
        them: the model's inputs; (N, H, W) images get their one channel."""
        images = np.asarray(images_NxHxWxC)
        if images.ndim == len(self.dataset.image_shape) and self.dataset.image_shape[-1] == 1:
            images = images[..., None]
        if images.shape[1:] != self.dataset.image_shape:
            raise ConfigError(
                f"images of shape {images.shape[1:]} given, but member {self.index} trained"
                f" on {self.config.dataset}'s {self.dataset.image_shape}"
            )
        return data.to_inputs(images, self.config.raw_pixels)

    def logits(self, inputs_NxHxWxC) -> jax.Array:
        """The model's logits `[N, K]` (float32) of model inputs, dropout off: differentiable
        in the inputs (`attacks`)."""
        return logits_of(self.spec, self.params, self.floats, inputs_NxHxWxC)

    def predict(self, images_NxHxWxC: np.ndarray) -> np.ndarray:
        """Class probabilities `[N, classes]` of images as the dataset stores them."""
        return np.asarray(jax.nn.softmax(self.logits(self.inputs(images_NxHxWxC))))


@functools.partial(jax.jit, static_argnames="spec")
def logits_of(spec: TrainSpec, params, floats, inputs_NxHxWxC) -> jax.Array:
    """One member's float32 logits of model inputs, dropout off."""
    hparams = {k: jnp.float32(v) for k, v in floats.items()}
    logits = spec.model(hparams).apply({"params": params}, inputs_NxHxWxC, train=False)
    return logits.astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Trained:
    """A checkpoint's members, each with its parameters, from their latest saved epoch."""

    directory: str
    config: Config  # the first member's
    members: tuple[Member, ...]

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.members[0].dataset.class_names

    def predict(self, images_NxHxWxC: np.ndarray) -> np.ndarray:
        """The members' mean class probability `[N, classes]`: the ensemble's prediction."""
        shared({m.config.dataset for m in self.members})
        return np.mean([m.predict(images_NxHxWxC) for m in self.members], axis=0)


def shared(names: set[str]) -> str:
    """The one dataset the members trained on; refuses an ensemble over several."""
    if len(names) > 1:
        raise ConfigError(
            f"the members trained on different datasets ({', '.join(sorted(names))}): an"
            " ensemble needs one; choose a member"
        )
    return names.pop()


def load(directory: str, say: Callable[[str], None] | None = None) -> Trained:
    """Every member of the run saved in `directory` (`~` and relative paths as typed) with its
    latest parameters; `say` hears which modules were imported from their recorded files."""
    record = read_record(directory, say)
    members = [m for chunk in saved_chunks(directory, record) for m in members_of_chunk(chunk)]
    if not members:
        raise checkpoint_folder.CheckpointError(f"{directory} holds no saved epoch yet")
    return Trained(directory, Config.from_json(record["members"][0]["config"]), tuple(members))


def members_of_chunk(chunk: SavedChunk) -> list[Member]:
    """The chunk's members with their parameters and float hyperparameters as saved."""
    state = chunk.saved.state
    return [
        Member(
            index=chunk.first + m,
            config=member.config,
            hparams=member.hparams,
            params=member_params(state.params, m),
            floats={k: float(v[m]) for k, v in state.hparams.items()},
            epoch=chunk.saved.epoch,
        )
        for m, member in enumerate(chunk.members)
    ]


def member_params(params_M, m: int):
    """Member `m`'s parameters of stacked ones `params_M`, as numpy arrays."""
    return jax.tree.map(lambda leaf: np.asarray(leaf[m]), params_M)


def read_record(directory: str, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The run's record (`run.json`), its modules imported (by name, else from their files)."""
    record = checkpoint_folder.read_run(os.path.expanduser(directory))
    files = record.get(checkpoint_folder.MODULE_FILES, {})
    locations.import_recorded(record.get("modules", []), files, say)
    return record


def members_of(record: dict[str, Any]) -> list[sweep.Member]:
    return [sweep.Member(Config.from_json(m["config"]), m["hparams"]) for m in record["members"]]


def one_device_mesh():
    """A mesh of one device: a checkpoint is read, and evaluated, on one."""
    one = {devices.DATA_AXIS: 1, devices.MEMBERS_AXIS: 1}
    return devices.make_mesh(devices.local_devices(1)[:1], one, 1)


def saved_chunks(directory: str, record: dict[str, Any], mesh=None) -> Iterator[SavedChunk]:
    """Each chunk of members with a saved epoch, as the run's groups and `max_members` made
    them; chunks that had not started, or hold no trained epoch, are skipped."""
    directory = os.path.expanduser(directory)
    mesh = mesh or one_device_mesh()
    for group in sweep.groups(members_of(record)):
        spec = spec_module.train_spec(group.members[0].config, [m.config for m in group.members])
        shape = datasets.get(group.members[0].config.dataset).image_shape
        size = record["max_members"]
        for first in range(0, len(group.members), size):
            members = group.members[first : first + size]
            start = group.first + first
            if not os.path.isdir(checkpoint_folder.group_path(directory, start, len(members))):
                continue  # this chunk had not started when the run stopped
            like_M = progress.initial_state(spec, mesh, members, shape)
            store = checkpoint.MemberCheckpoints(directory, start, len(members))
            try:
                saved = store.latest(like_M)
            finally:  # a damaged checkpoint too: orbax's threads end now, not at exit
                store.close()
            if saved is not None and saved.epoch > 0:
                yield SavedChunk(group, start, members, spec, saved)
