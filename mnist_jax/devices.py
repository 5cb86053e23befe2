"""Where arrays live: a 2-D device mesh of `data` x `members`, and host arrays placed on it.

A sweep's members are independent, so the `members` axis spreads them over the devices (each
device trains its share on the whole batch, with no per-step collectives); the `data` axis
splits each batch over devices (the gradients are all-reduced every step). Every state leaf
has a leading member axis, sharded along `members`; the batch is sharded along `data`.
"""

import math

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mnist_jax.config import ConfigError

DATA_AXIS, MEMBERS_AXIS = "data", "members"  # the mesh's axes; also the name of the vmaps
# over a sweep's members, so a layer can ask how many members it is mapped over
AXES = (DATA_AXIS, MEMBERS_AXIS)


def members_mapped() -> int:
    """How many members the code being traced is mapped over: the size of the vmap axis
    `MEMBERS_AXIS` of a sweep's epoch, 1 outside it."""
    try:
        return jax.lax.axis_size(MEMBERS_AXIS)
    except NameError:
        return 1


def local_devices(devices: int | None) -> list:
    """The devices the mesh spans: the first `devices` of each process (all by default)."""
    by_process: dict[int, list] = {}
    for device in jax.devices():
        by_process.setdefault(device.process_index, []).append(device)
    local = len(by_process[jax.process_index()])
    count = local if devices is None else devices
    if not 1 <= count <= local:
        raise ConfigError(f"--devices {devices}: this process sees {local} local device(s)")
    return [d for process_devices in by_process.values() for d in process_devices[:count]]


def choose_layout(num_devices: int, num_members: int, asked: dict[str, int] | None) -> dict:
    """`{"data": d, "members": m}` with d * m devices: as `asked` (`--mesh`), else members
    first, as many devices as evenly divide the members, and the batch over the rest."""
    if asked is not None:
        layout = {axis: asked.get(axis, 1) for axis in AXES}
        if math.prod(layout.values()) != num_devices:
            shown = ",".join(f"{a}={n}" for a, n in layout.items())
            raise ConfigError(
                f"--mesh {shown} spans {math.prod(layout.values())} devices, but the run has "
                f"{num_devices}: make the sizes multiply to {num_devices} (or set --devices)"
            )
    else:
        members = math.gcd(num_members, num_devices)
        layout = {DATA_AXIS: num_devices // members, MEMBERS_AXIS: members}
    if num_members % layout[MEMBERS_AXIS]:
        raise ConfigError(
            f"{num_members} members do not split evenly over --mesh members="
            f"{layout[MEMBERS_AXIS]}: sweep a multiple of {layout[MEMBERS_AXIS]} members, or "
            "give a members size that divides them"
        )
    return layout


def make_mesh(devices: list, layout: dict[str, int], batch_size: int) -> Mesh:
    """The mesh over `devices` (process-major) in `layout`; the batch must split over `data`."""
    if batch_size % layout[DATA_AXIS]:
        raise ConfigError(
            f"batch size {batch_size} does not split evenly over {layout[DATA_AXIS]} devices "
            "on the data axis"
        )
    grid = np.array(devices).reshape(layout[MEMBERS_AXIS], layout[DATA_AXIS]).T
    return Mesh(grid, AXES)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def by_member(mesh: Mesh) -> NamedSharding:
    """A stacked state's sharding: its leading member axis over `members` (replicated on a
    mesh without one)."""
    axis = MEMBERS_AXIS if MEMBERS_AXIS in mesh.axis_names else None
    return NamedSharding(mesh, PartitionSpec(axis))


def to_devices(mesh: Mesh, *arrays: np.ndarray, sharding: NamedSharding | None = None):
    """Each array on the mesh (whole on every device by default), from the copy every process
    holds."""
    sharding = sharding or replicated(mesh)
    return tuple(
        jax.make_array_from_callback(a.shape, sharding, lambda index, a=a: a[index]) for a in arrays
    )


def to_host(tree):
    """A pytree of (possibly member-sharded, possibly multi-process) arrays as whole numpy
    arrays on every process."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return jax.tree.map(
        lambda a: np.asarray(multihost_utils.process_allgather(a, tiled=True)), tree
    )


def place_state(mesh: Mesh, host_state_M):
    """A state restored on the host, on the mesh as `train.init_members` places it."""
    leaves, treedef = jax.tree.flatten(host_state_M)
    state_M = jax.tree.unflatten(treedef, to_devices(mesh, *leaves, sharding=by_member(mesh)))
    return state_M.replace(key=jax.random.wrap_key_data(state_M.key))
