"""Where arrays live: the device mesh, and host arrays placed on it."""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mnist_jax import train
from mnist_jax.config import ConfigError


def make_mesh(devices: int | None, batch_size: int) -> Mesh:
    """A 1-D mesh over the data axis: the batch is split across devices, params replicated.

    `devices` counts per process (all local devices by default); with several processes the
    mesh spans the same number of devices on each.
    """
    by_process: dict[int, list] = {}
    for device in jax.devices():
        by_process.setdefault(device.process_index, []).append(device)
    local = len(by_process[jax.process_index()])
    count = local if devices is None else devices
    if not 1 <= count <= local:
        raise ConfigError(f"--devices {devices}: this process sees {local} local device(s)")
    chosen = [d for process_devices in by_process.values() for d in process_devices[:count]]
    if batch_size % len(chosen):
        raise ConfigError(
            f"batch size {batch_size} does not split evenly over {len(chosen)} devices"
        )
    return Mesh(np.array(chosen), (train.DATA_AXIS,))


def to_devices(mesh: Mesh, *arrays: np.ndarray):
    """Each array whole on every device of the mesh, from the copy every process holds."""
    replicated = NamedSharding(mesh, PartitionSpec())
    return tuple(
        jax.make_array_from_callback(a.shape, replicated, lambda index, a=a: a[index])
        for a in arrays
    )


def place_state(mesh: Mesh, host_state_M: train.TrainState) -> train.TrainState:
    """A state restored on the host, on every device as `train.init_members` places it."""
    leaves, treedef = jax.tree.flatten(host_state_M)
    state_M = jax.tree.unflatten(treedef, to_devices(mesh, *leaves))
    return state_M.replace(key=jax.random.wrap_key_data(state_M.key))
