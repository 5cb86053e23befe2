"""Training on small synthetic arrays (not MNIST): the mechanics, not the accuracy."""

import dataclasses

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from mnist_jax import progress, sweep, train
from mnist_jax import spec as spec_module
from mnist_jax.config import Config

N, K = 64, 10
IMAGE = (28, 28, 1)
MESH = Mesh(np.array(jax.devices()[:1]), (train.DATA_AXIS,))
DROPOUT = {"dropout_rate": 0.25, "dropout_after": [1, 2, 3, 4]}


def config(model=None, **fields) -> Config:
    """A complete MLP config, batches of 8."""
    base = Config("t", "mlp", model or {}, epochs=1, batch_size=8)
    return sweep.complete(dataclasses.replace(base, **fields))


PLAIN, SGD_DROPOUT = config(), config(DROPOUT, optimizer_name="sgd")
ADAM_DROPOUT = config(DROPOUT)
SPEC, SGD_DROPOUT_SPEC, DROPOUT_SPEC = map(
    spec_module.train_spec, (PLAIN, SGD_DROPOUT, ADAM_DROPOUT)
)
CONFIGS = {SPEC: PLAIN, SGD_DROPOUT_SPEC: SGD_DROPOUT, DROPOUT_SPEC: ADAM_DROPOUT}


@pytest.fixture(scope="module")
def synthetic_data():
    x = jax.random.uniform(jax.random.key(0), (N, *IMAGE))
    y = jax.nn.one_hot(jax.random.randint(jax.random.key(1), (N,), 0, K), K)
    return x, y


def members(spec, lrs, seeds=None, base=None):
    seeds = [0] * len(lrs) if seeds is None else seeds
    base = base or CONFIGS[spec]
    group = [
        sweep.Member(dataclasses.replace(base, lr=lr, seed=s), {})
        for lr, s in zip(lrs, seeds, strict=True)
    ]
    return progress.initial_state(spec, MESH, group, IMAGE)


unstack = train.member


def test_train_step_lowers_the_loss_on_a_fixed_batch_synthetic(synthetic_data):
    state = unstack(members(SPEC, [1e-3]), 0)
    step = jax.jit(train.step_of(SPEC))
    losses = []
    for _ in range(20):
        state, metrics = step(state, synthetic_data, jax.random.key(0))
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.5 * losses[0]


def test_compiled_epoch_equals_the_same_steps_one_by_one_synthetic(synthetic_data):
    # SGD: Adam divides by the root of tiny second moments, amplifying float rounding.
    key = jax.random.key(7)
    state_M = members(SGD_DROPOUT_SPEC, [1e-3])
    one_by_one = unstack(state_M, 0)
    epoch_state, metrics, _ = train.train_epoch(
        SGD_DROPOUT_SPEC, MESH, state_M, synthetic_data, key, num_batches=N // 8
    )
    x, y = synthetic_data
    step = jax.jit(train.step_of(SGD_DROPOUT_SPEC))
    idx = train.shuffled_batches(key, N, 8, N // 8)
    for i, batch_idx in enumerate(idx):
        step_key = jax.random.fold_in(one_by_one.key, one_by_one.step)
        one_by_one, m = step(one_by_one, (x[batch_idx], y[batch_idx]), step_key)
        np.testing.assert_allclose(metrics["loss"][0, i], m["loss"], rtol=1e-5)
    assert int(unstack(epoch_state, 0).step) == int(one_by_one.step) == N // 8
    compiled = jax.tree.leaves(unstack(epoch_state, 0).params)
    for a, b in zip(compiled, jax.tree.leaves(one_by_one.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_shuffle_is_a_permutation_with_the_remainder_dropped():
    idx = train.shuffled_batches(jax.random.key(0), 10, 3, 3)
    assert idx.shape == (3, 3)
    assert len(set(np.asarray(idx).ravel().tolist())) == 9


def test_same_seed_same_numbers_synthetic(synthetic_data):
    def run():
        state, metrics, _ = train.train_epoch(
            DROPOUT_SPEC,
            MESH,
            members(DROPOUT_SPEC, [1e-3]),
            synthetic_data,
            jax.random.key(3),
            num_batches=N // 8,
        )
        return np.asarray(metrics["loss"]), np.asarray(state.params["dense_1"]["kernel"])

    (loss_a, w_a), (loss_b, w_b) = run(), run()
    np.testing.assert_array_equal(loss_a, loss_b)
    np.testing.assert_array_equal(w_a, w_b)


@pytest.mark.slow  # minutes of CPU in all: .ci/run runs it
def test_sweep_members_equal_separate_runs_synthetic(synthetic_data):
    lrs = [3e-4, 1e-3, 3e-3]
    key = jax.random.key(5)
    sweep, sweep_metrics, _ = train.train_epoch(
        DROPOUT_SPEC, MESH, members(DROPOUT_SPEC, lrs, [0, 1, 2]), synthetic_data, key, N // 8
    )
    for m, lr in enumerate(lrs):
        alone, alone_metrics, _ = train.train_epoch(
            DROPOUT_SPEC, MESH, members(DROPOUT_SPEC, [lr], [m]), synthetic_data, key, N // 8
        )
        np.testing.assert_allclose(sweep_metrics["loss"][m], alone_metrics["loss"][0], rtol=1e-4)
        np.testing.assert_allclose(
            unstack(sweep, m).params["dense_5"]["kernel"],
            unstack(alone, 0).params["dense_5"]["kernel"],
            rtol=1e-4,
            atol=1e-6,
        )


def test_a_diverging_member_is_marked_and_frozen_while_the_others_train_synthetic(
    synthetic_data,
):
    # Three members of DROPOUT_SPEC: the program of the sweep tests. Adam at 1e12 moves every
    # weight by about 1e12 a step, so the activations overflow within a few steps.
    spec, data = DROPOUT_SPEC, synthetic_data
    state, metrics, _ = train.train_epoch(
        spec, MESH, members(spec, [1e-3, 1e12, 3e-3], [0, 1, 2]), data, jax.random.key(0), N // 8
    )
    assert state.diverged.tolist() == [False, True, False]
    assert np.isfinite(metrics["loss"][0]).all() and np.isfinite(metrics["loss"][2]).all()
    assert not np.isfinite(metrics["loss"][1, -1])
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(unstack(state, 1).params))
    frozen = unstack(state, 1)
    state, _, _ = train.train_epoch(spec, MESH, state, data, jax.random.key(2), N // 8)
    after = jax.tree.leaves(unstack(state, 1).params)
    for a, b in zip(jax.tree.leaves(frozen.params), after, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("lrs", [[1e-3, 1e12, 3e-3], [1e-3, 3e-3]], ids=["diverging", "finite"])
def test_the_loops_epoch_equals_the_guarded_one_diverging_or_not_synthetic(synthetic_data, lrs):
    # `train.epoch` trains unguarded first: equal to the guarded epoch, bit for bit, whether it
    # keeps that (every member finite) or trains again under the guard (one diverged).
    spec, data, key = DROPOUT_SPEC, synthetic_data, jax.random.key(0)
    seeds = list(range(len(lrs)))
    guarded = train.train_epoch(spec, MESH, members(spec, lrs, seeds), data, key, N // 8)
    looped = train.epoch(spec, MESH, members(spec, lrs, seeds), data, key, N // 8)
    assert looped[0].diverged.tolist() == [lr > 1 for lr in lrs]
    bits = [(s.replace(key=jax.random.key_data(s.key)), *rest) for s, *rest in (guarded, looped)]
    for a, b in zip(*map(jax.tree.leaves, bits), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_unguarded_epoch_lets_a_diverging_member_go_non_finite_synthetic(synthetic_data):
    # What the guard prevents: without it the member's parameters leave the finite numbers.
    spec, data = DROPOUT_SPEC, synthetic_data
    state_M = members(spec, [1e-3, 1e12], [0, 1])
    state, _, _ = train.train_epoch(spec, MESH, state_M, data, jax.random.key(0), N // 8, False)
    assert state.diverged.tolist() == [False, True]
    assert not all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(unstack(state, 1).params))


def test_evaluate_turns_dropout_off_synthetic(synthetic_data):
    state = members(DROPOUT_SPEC, [1e-3])
    a, _ = train.evaluate(DROPOUT_SPEC, MESH, state.params, state.hparams, synthetic_data)
    b, _ = train.evaluate(DROPOUT_SPEC, MESH, state.params, state.hparams, synthetic_data)
    plain, _ = train.evaluate(SPEC, MESH, state.params, state.hparams, synthetic_data)
    np.testing.assert_array_equal(a["loss"], b["loss"])
    np.testing.assert_allclose(a["loss"], plain["loss"], rtol=1e-6)


def test_batch_metrics_carry_the_scheduled_learning_rate_synthetic(synthetic_data):
    decay = config(schedule_name="lab_decay")
    spec = spec_module.train_spec(decay)
    _, metrics, _ = train.train_epoch(
        spec, MESH, members(spec, [0.003], base=decay), synthetic_data, jax.random.key(0), N // 8
    )
    steps = np.arange(N // 8)
    np.testing.assert_allclose(
        metrics["learning_rate"][0], 0.0001 + 0.003 * np.exp(-steps / 2000), rtol=1e-6
    )


def test_a_float_sweep_is_one_program_and_each_member_equals_its_lone_run_synthetic(
    synthetic_data,
):
    # Dropout rate, Adam's b1 and the rate differ; the dropout masks must match too.
    settings = [(0.0, 0.9, 1e-3), (0.25, 0.8, 3e-3), (0.5, 0.95, 1e-3)]
    group = [
        sweep.Member(
            dataclasses.replace(
                ADAM_DROPOUT,
                model={**ADAM_DROPOUT.model, "dropout_rate": rate},
                optimizer={**ADAM_DROPOUT.optimizer, "b1": b1},
                lr=lr,
            ),
            {},
        )
        for rate, b1, lr in settings
    ]
    specs = {spec_module.train_spec(m.config) for m in group}
    assert specs == {DROPOUT_SPEC}  # floats are data: one compiled program
    key = jax.random.key(5)
    swept, swept_metrics, _ = train.train_epoch(
        DROPOUT_SPEC, MESH, progress.initial_state(DROPOUT_SPEC, MESH, group, IMAGE),
        synthetic_data, key, N // 8,
    )  # fmt: skip
    for m, member in enumerate(group):
        alone_state = progress.initial_state(DROPOUT_SPEC, MESH, [member], IMAGE)
        alone, alone_metrics, _ = train.train_epoch(
            DROPOUT_SPEC, MESH, alone_state, synthetic_data, key, N // 8
        )
        np.testing.assert_allclose(swept_metrics["loss"][m], alone_metrics["loss"][0], rtol=1e-4)
        assert float(unstack(swept, m).opt_state.hyperparams["b1"]) == np.float32(settings[m][1])
    losses = swept_metrics["loss"]
    assert not np.allclose(losses[0], losses[1])  # the settings took effect


@pytest.mark.parametrize(
    "optimizer, settings, lr",
    [
        ("adamw", {"weight_decay": 1e-2}, 1e-3),
        ("keras_rmsprop", {}, 1e-3),
        ("sgd", {"momentum": 0.9}, 0.05),
    ],
)
def test_added_optimizers_train_synthetic(synthetic_data, optimizer, settings, lr):
    base = config(optimizer_name=optimizer, optimizer=settings)
    spec = spec_module.train_spec(base)
    state = unstack(members(spec, [lr], base=base), 0)
    step = jax.jit(train.step_of(spec))
    losses = []
    for _ in range(40):
        state, metrics = step(state, synthetic_data, jax.random.key(0))
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.7 * losses[0]
    for k, v in settings.items():
        assert float(state.opt_state.hyperparams[k]) == np.float32(v)


def test_a_sweep_shares_the_batch_only_for_this_packages_models_on_one_cpu(monkeypatch):
    assert jax.default_backend() == "cpu" and MESH.size == 1
    assert train.shares_batch(SPEC, MESH)  # its Dense layers write x^T g inside the vmap

    class OwnModel:  # a model of one's own, registered from its own module
        pass

    monkeypatch.setattr(train.models.MODELS, "get", lambda name: OwnModel)
    assert not train.shares_batch(SPEC, MESH)
    monkeypatch.undo()
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert not train.shares_batch(SPEC, MESH)
