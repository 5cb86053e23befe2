"""The checks a run passes before anything is created: its size against memory, that its
groups build and take a step, that its model fits its dataset, that its outputs can be
written. Each refuses in one line (`ConfigError`) naming what to change."""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mnist_jax import budget, conv, datasets, files, models, search, sweep, train
from mnist_jax.config import Config, ConfigError
from mnist_jax.distributions import Distribution
from mnist_jax.overrides import Override
from mnist_jax.search import Search
from mnist_jax.spec import train_spec


def check_size(
    config: Config, given: Sequence[Override], max_members: int, found: Search
) -> list[budget.Group]:
    """Refuses a grid too large for this machine's memory before it is built, judged by its
    first point's model (a structural sweep is judged again by each group's, once built);
    returns what the estimate was made of. A single run is not estimated. A search's
    `samples` multiply the grid; its distributions are left out of the first point."""
    grid, found = search.split_overrides(given, found)
    grid = [o for o in grid if not isinstance(o.values[0], Distribution)]
    size = math.prod(len(o.values) for o in grid) * (found.samples or 1)
    if size == 1:
        return [budget.Group(1, 0, 0, 0)]
    first = sweep.expand(config, [Override(o.key, o.values[:1]) for o in grid])[0].config
    sizes = [budget_group(first, size)]
    if why := budget.problem(sizes, max_members):
        raise ConfigError(why)
    return sizes


def check_groups_fit(groups: list[sweep.Group], max_members: int) -> None:
    """A structural sweep's groups, each judged by its own model now that they are known."""
    if len(groups) > 1:
        sizes = [budget_group(g.members[0].config, len(g.members)) for g in groups]
        if why := budget.problem(sizes, max_members):
            raise ConfigError(why)


def budget_group(config: Config, members: int) -> budget.Group:
    """`members` members shaped as `config`'s model, for the memory estimate."""
    model = train_spec(config).model(sweep.float_hparams(config))
    rows = models.layer_table(model, datasets.get(config.dataset).image_shape)
    return budget.Group(
        members=members,
        params=sum(row[3] for row in rows),
        activations=sum(math.prod(row[2][1:]) for row in rows),
        steps=budget.steps_of(config.epochs, config.steps, config.batch_size),
    )


def check_builds(group: sweep.Group) -> None:
    """Builds the group's model, optimizer, step and metrics and takes one step of one member,
    for shapes only (nothing is computed): a setting the library refuses only when used
    (`optimizer.mu_dtype=abc`) is named in one line before anything is created, not as a
    traceback after."""
    config = group.members[0].config
    spec = train_spec(config)
    shape = datasets.get(config.dataset).image_shape
    hparams = {k: jnp.float32(v) for k, v in sweep.float_hparams(config).items()}
    x_BxHxWxC = jax.ShapeDtypeStruct((config.batch_size, *shape), jnp.float32)
    y_BxK = jax.ShapeDtypeStruct((config.batch_size, datasets.get(config.dataset).num_classes),
                                 jnp.float32)  # fmt: skip

    def step(x_BxHxWxC, y_BxK):
        state = train.init_state(spec, jax.random.key(0), hparams, shape)
        return train.step_of(spec)(state, (x_BxHxWxC, y_BxK), jax.random.key(1))

    try:
        with conv.shapes_only():
            jax.eval_shape(step, x_BxHxWxC, y_BxK)
    except Exception as error:  # any library's refusal of a value it was handed
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise ConfigError(
            f"{config.model_name} with {config.optimizer_name} and the {config.train_step_name} "
            f"step cannot be built from these settings ({type(error).__name__}: {reason}); "
            "check the model.*, optimizer.* and train_step.* values given"
        ) from None


def check_model(config: Config, input_shape: tuple[int, ...]) -> None:
    """Refuses a model whose outputs do not match the dataset's classes (a registered model
    without a `num_classes` field), before anything is written."""
    model = train_spec(config).model(sweep.float_hparams(config))
    x = jax.ShapeDtypeStruct((1, *input_shape), np.float32)
    with conv.shapes_only():  # shapes only: an `auto` convolution measures nothing here
        logits = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x)[0], x)
    num_classes = datasets.get(config.dataset).num_classes
    if logits.shape != (1, num_classes):
        raise ConfigError(
            f"model {config.model_name} gives outputs of shape {logits.shape[1:]} for dataset"
            f" {config.dataset}'s {num_classes} classes; give the model a num_classes field"
            " (set from the dataset)"
        )


def check_batch(config: Config, num_examples: int) -> None:
    if config.batch_size > num_examples:
        raise ConfigError(
            f"batch size {config.batch_size} is larger than the {num_examples} training"
            f" examples of {config.dataset}"
        )


def check_destinations(json_path: str | None, csv_path: str | None) -> None:
    """Refuses a results file that could not be written, before any work: not after training."""
    for what, path in [("the JSON results", json_path), ("the CSV", csv_path)]:
        if path is not None and (why := files.destination_problem(path)):
            raise ConfigError(f"cannot write {what} to {path}: {why}")


def check_search(strategy: str | None, members: int, max_members: int) -> None:
    if strategy in ("halving", "pbt") and members > max_members:
        raise ConfigError(
            f"--search {strategy} trains its {members} members in one program: raise "
            f"--max-members to {members} or draw fewer --samples"
        )
