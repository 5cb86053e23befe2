"""`init_from=CHECKPOINT_DIR`: members that start from another run's trained parameters.

Only the parameters are taken: the optimizer state and the step start afresh, as a new run's.
The source may have trained on another dataset of the same image shape (MNIST, then permuted
MNIST; one alphabet, then another). Member m starts from the source's member m when both runs
have as many members, else from the source's member 0; `init_from.member=N` names one for all.
Before anything trains, every member's layers are compared with its source's: a layer missing,
added or of another shape is refused in one line naming it.

Wiring (the only calls from the core): `resolve(members, model_of)` before the groups are
made, which fixes each member's source member in its config and checks the layers; `start(spec,
mesh, members, state_M)` where a chunk's fresh state is made. The source's parameters are read
as its checkpoint stores them, with no model built, so this module needs no other's.
"""

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mnist_jax import checkpoint_folder
from mnist_jax.config import Config, ConfigError, coerce_init_from


def source_dir(path: str) -> str:
    """The checkpoint dir `path` names, `~` expanded, relative to the working directory."""
    return os.path.abspath(os.path.expanduser(path))


def resolve(members: Sequence, model_of: Callable) -> list:
    """`members` (`sweep.Member`s, in run order) with `init_from` an absolute path and
    `init_from_member` the source member each starts from; refuses, before any work, a source
    that is no checkpoint, a member it lacks, or layers that differ from the model
    `model_of(config)` builds."""

    if not any(member.config.init_from for member in members):
        return list(members)
    resolved = []
    for m, member in enumerate(members):
        config = member.config
        if not config.init_from:
            resolved.append(member)
            continue
        path = source_dir(coerce_init_from("init_from", config.init_from))
        count = len(checkpoint_folder.read_run(path)["members"])
        given = coerce_init_from("init_from.member", config.init_from_member)
        chosen = given if given is not None else (m if len(members) == count else 0)
        if chosen >= count:
            raise ConfigError(f"init_from.member={chosen}: {path} holds members 0 to {count - 1}")
        config = dataclasses.replace(config, init_from=path, init_from_member=chosen)
        resolved.append(dataclasses.replace(member, config=config))
    for member in resolved:
        if member.config.init_from:
            model = model_of(member.config)
            check_layers(member.config, model, source_params(*_source(member.config)))
    return resolved


def _source(config: Config) -> tuple[str, int]:
    return config.init_from, config.init_from_member


def source_params(path: str, member: int):
    """The parameters of member `member` of the checkpoint in `path`, at its latest epoch."""
    saved = _saved_params(path, _fingerprint(path, checkpoint_folder.RUN_FILE))
    if member not in saved:
        raise ConfigError(f"init_from: member {member} of {path} has no saved epoch")
    return saved[member]


def _fingerprint(path: str, record: str) -> tuple:
    """What changes when the checkpoint does: its record's time, every group's saved epochs."""
    folders = sorted(n for n in os.listdir(path) if n.startswith("members-"))
    epochs = tuple(tuple(sorted(os.listdir(os.path.join(path, n)))) for n in folders)
    return os.path.getmtime(os.path.join(path, record)), tuple(folders), epochs


@functools.lru_cache(maxsize=4)
def _saved_params(path: str, fingerprint: tuple) -> dict[int, Any]:
    """Every saved member's parameters by index, read once while the checkpoint is unchanged
    (the pre-flight's check and the start read them once). Read as the checkpoint stores them:
    no model is built."""
    import orbax.checkpoint as ocp  # slow to import: only runs that start from a checkpoint pay

    from mnist_jax import checkpoint

    del fingerprint  # part of the cache key only
    record = checkpoint_folder.read_run(path)
    found = {}
    for first, size in record["groups"]:
        for start in range(first, first + size, record["max_members"]):
            count = min(record["max_members"], first + size - start)
            if not os.path.isdir(checkpoint_folder.group_path(path, start, count)):
                continue  # this chunk had not started when the run stopped
            store = checkpoint.MemberCheckpoints(path, start, count)
            epoch = store.manager.latest_step()
            try:
                if not epoch:  # none, or an epoch 0: nothing trained
                    continue
                state = ocp.args.StandardRestore()
                restored = store.manager.restore(epoch, args=ocp.args.Composite(state=state))
            except Exception as error:  # orbax and tensorstore raise many kinds
                raise checkpoint_folder.damaged(store.path, epoch, [], error) from None
            finally:
                store.close()
            params_M = restored.state["params"]
            for m in range(count):
                found[start + m] = jax.tree.map(lambda leaf, m=m: np.asarray(leaf[m]), params_M)
    return found


def layer_shapes(params) -> dict[str, tuple[int, ...]]:
    """Every parameter by its path (`dense_1/kernel`) with its shape."""
    flat = jax.tree_util.tree_leaves_with_path(params)
    return {"/".join(str(getattr(k, "key", k)) for k in p): tuple(leaf.shape) for p, leaf in flat}


def check_layers(config: Config, model, source) -> None:
    """Refuses, in one line naming the layer, source parameters that do not fit `model` (of
    `config`) on its dataset's images: a layer it lacks, one it does not have, or one of
    another shape. Nothing is computed."""
    from mnist_jax import conv, datasets

    x = jax.ShapeDtypeStruct((1, *datasets.get(config.dataset).image_shape), jnp.float32)
    with conv.shapes_only():
        params = jax.eval_shape(lambda x: model.init(jax.random.key(0), x)["params"], x)
    ours, theirs = layer_shapes(params), layer_shapes(source)
    where = f"init_from={config.init_from} (member {config.init_from_member})"
    for name, shape in ours.items():
        layer, _, part = name.rpartition("/")
        if name not in theirs:
            raise ConfigError(
                f"{where}: layer {layer} ({part} {shape}) of this model is not in the checkpoint"
            )
        if theirs[name] != shape:
            raise ConfigError(
                f"{where}: layer {layer}'s {part} is {theirs[name]} in the checkpoint but {shape}"
                f" in this model ({config.model_name} on {config.dataset}); give the same model,"
                " or a dataset of the same image shape and classes"
            )
    for name in theirs:
        if name not in ours:
            layer, _, part = name.rpartition("/")
            raise ConfigError(f"{where}: layer {layer} ({part}) of the checkpoint is not in ours")


def start(spec, mesh, members: Sequence, state_M):
    """`state_M` (a chunk's fresh state) with the source's parameters, the optimizer state made
    anew from them; unchanged when the members start from their own initialisation."""
    configs = [m.config for m in members]
    if not configs[0].init_from:
        return state_M
    stacked = [source_params(*_source(c)) for c in configs]
    params_M = jax.tree.map(
        lambda like, *leaves: np.stack(leaves).astype(like.dtype), state_M.params, *stacked
    )
    return _with_params(spec, mesh, state_M, params_M)


@functools.partial(jax.jit, static_argnames=("spec", "mesh"))
def _with_params(spec, mesh, state_M, params_M):
    from mnist_jax.devices import by_member

    opt_state = jax.vmap(lambda p, h: spec.tx(h).init(p))(params_M, state_M.hparams)
    state_M = state_M.replace(params=params_M, opt_state=opt_state)
    return jax.lax.with_sharding_constraint(state_M, by_member(mesh))
