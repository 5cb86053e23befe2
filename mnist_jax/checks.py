"""The checks a run passes before anything is created: its size against memory, that its
groups build and take a step, that its model fits its dataset, that its outputs can be
written. Each refuses in one line (`ConfigError`) naming what to change."""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mnist_jax import budget, conv, datasets, files, metrics, models, search, steps, sweep, train
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
    sweep.check_lists(config, given)
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
    """Builds the group's model, loss, optimizer, step and every metric and traces each for
    shapes only (nothing is computed): a setting the library refuses only when used
    (`optimizer.mu_dtype=abc`), or a component of one's own that fails or gives the wrong shape,
    is named in one line with its module before anything is created, not after an epoch."""
    config = group.members[0].config
    spec = train_spec(config)
    dataset = datasets.get(config.dataset)
    hparams = {k: jnp.float32(v) for k, v in sweep.float_hparams(config).items()}
    x_BxHxWxC = jnp.zeros((config.batch_size, *dataset.image_shape), jnp.float32)
    y_BxK = jnp.zeros((config.batch_size, dataset.num_classes), jnp.float32)

    def state():
        return train.init_state(spec, jax.random.key(0), hparams, dataset.image_shape)

    def step():
        return train.step_of(spec)(state(), (x_BxHxWxC, y_BxK), jax.random.key(1))

    def observed():
        """What a metric reads, as a tuple of `metrics.Observed`'s fields, at a batch."""
        params = state().params
        logits, seen = steps.forward(spec, spec.model(hparams), params, x_BxHxWxC)
        loss = spec.loss(hparams)(logits, y_BxK, params)
        return logits, y_BxK, loss, params, params, jnp.float32(0), x_BxHxWxC, seen

    with conv.shapes_only():
        try:  # everything in one trace: the common case, where all of it builds
            seen, built = jax.eval_shape(lambda: (observed(), step()))[0], True
        except Exception:  # a part fails: each is traced apart below, in order, to name it
            seen, built = None, False
        if not built:
            model = spec.model(hparams)
            traced(config, "model", lambda: model.init(jax.random.key(0), x_BxHxWxC))
            logits = _logits(spec, hparams, x_BxHxWxC, y_BxK)
            traced(config, "loss", lambda: _scalar(spec.loss(hparams)(*logits)))
            traced(config, "optimizer", lambda: spec.tx(hparams).update(*_update_args(state)))
            seen = jax.eval_shape(observed)
        for name in spec.metric_names:
            check_metric(metrics.get(name), seen)
        if not built:
            traced(config, "train_step", step)


def check_metric(metric: metrics.Metric, seen: tuple) -> None:
    """Traces `metric` at each place it is computed on what it sees there (`seen`: the fields
    of an `Observed` at a batch, as shapes); refuses one that fails or that gives other than a
    scalar (or a dict of scalars) outside `END`."""
    module = metrics.METRICS.module_of(metric.name)
    for where in metric.where:
        fields = {
            metrics.BATCH: seen,
            metrics.EPOCH: (None, None, None, seen[3]),
            metrics.TEST: (*seen[:4], None, None, *seen[6:]),
            metrics.END: (*seen[:4], None, None, *seen[6:]),
        }[where]
        try:
            found = jax.eval_shape(
                lambda f: metrics.compute([metric.name], metrics.Observed(*f)), fields
            )
        except Exception as error:
            raise ConfigError(
                f"metric {metric.name} (registered in {module}) fails at {where} ({_reason(error)})"
            ) from None
        if where != metrics.END and (bad := _not_scalars(found)):
            raise ConfigError(
                f"metric {metric.name} (registered in {module}) gives shape {bad} at {where}; a "
                f"{where} metric gives a scalar or a dict of scalars"
            )


def traced(config: Config, kind: str, build):
    """`build()` traced for shapes; a failure is one line naming the component and its module."""
    name = getattr(config, f"{kind}_name")
    try:
        return jax.eval_shape(build)
    except ConfigError:
        raise
    except Exception as error:  # any library's refusal of a value it was handed
        module = sweep.SETTINGS[kind].module_of(name)
        raise ConfigError(
            f"{kind} {name} (registered in {module}) cannot be built or run from these "
            f"settings ({_reason(error)}); check the {kind}.* values given"
        ) from None


def _reason(error: Exception) -> str:
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return f"{type(error).__name__}: {reason}"


def _logits(spec, hparams, x_BxHxWxC, y_BxK):
    """What a loss takes: logits, labels and parameters (zeros of their shapes)."""
    model = spec.model(hparams)
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), x_BxHxWxC)["params"])
    logits = jax.eval_shape(lambda p: spec.model(hparams).apply({"params": p}, x_BxHxWxC), params)
    return jnp.zeros(logits.shape, logits.dtype), y_BxK, jax.tree.map(jnp.zeros_like, params)


def _update_args(state):
    """What an optimizer's update takes: gradients (zeros), its state and the parameters."""
    built = state()
    return jax.tree.map(jnp.zeros_like, built.params), built.opt_state, built.params


def _scalar(value):
    if jnp.shape(value) != ():
        raise ValueError(f"the loss gives shape {jnp.shape(value)}, expected a scalar")
    return value


def _not_scalars(values) -> tuple | None:
    """The first shape among `values` (a dict of traced values) that is not a scalar."""
    return next((v.shape for v in jax.tree.leaves(values) if v.shape != ()), None)


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


def check_checkpoint_every(seconds: float) -> None:
    """`checkpoint_every` from Python, as `--checkpoint-every` is checked on the command line."""
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"checkpoint_every takes a number of seconds, 0 or more, got {seconds}")


def check_search(strategy: str | None, members: int, max_members: int) -> None:
    if strategy in ("halving", "pbt") and members > max_members:
        raise ConfigError(
            f"--search {strategy} trains its {members} members in one program: raise "
            f"--max-members to {members} or draw fewer --samples"
        )
