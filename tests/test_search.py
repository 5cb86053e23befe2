"""Search's pure parts: distributions in the override grammar, deterministic draws inside their
ranges, successive halving's rungs and ranking, PBT's exploit-and-explore step on a stacked
state (exact copies, perturbations in bounds, one compilation)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnist_jax import devices, overrides, pbt, search, spec, train
from mnist_jax.config import ConfigError
from mnist_jax.distributions import Distribution


@pytest.mark.parametrize(
    "arg, kind, values",
    [
        ("lr=loguniform(1e-4,1e-2)", "loguniform", (1e-4, 1e-2)),
        ("model.dropout_rate=uniform(0,0.5)", "uniform", (0, 0.5)),
        ("optimizer.b1=choice(0.8,0.9,0.95)", "choice", (0.8, 0.9, 0.95)),
        ("model.hidden=choice([64],[128,64])", "choice", ([64], [128, 64])),
        ("optimizer=choice(adam, sgd)", "choice", ("adam", "sgd")),
    ],
)
def test_distributions_parse_as_override_values(arg, kind, values):
    parsed = overrides.parse(arg)
    assert parsed.values == (Distribution(kind, values),)


@pytest.mark.parametrize(
    "arg, words",
    [
        ("lr=loguniform(0,1)", "positive low end"),
        ("lr=uniform(1,0.5)", "below the high end"),
        ("lr=uniform(1)", "two numbers"),
        ("lr=normal(0,1)", "not a distribution"),
        ("lr=choice()", "at least one value"),
        ("lr=0.1,uniform(0,1)", "only value"),
        ("lr=uniform(choice(1,2),3)", "do not nest"),
    ],
)
def test_bad_distributions_are_refused_in_one_line(arg, words):
    with pytest.raises(overrides.OverrideError, match=words) as error:
        overrides.parse(arg)
    assert "\n" not in str(error.value)


def test_draws_are_deterministic_and_inside_their_ranges():
    dists = {
        "lr": Distribution("loguniform", (1e-4, 1e-2)),
        "model.dropout_rate": Distribution("uniform", (0, 0.5)),
        "optimizer.b1": Distribution("choice", (0.8, 0.9, 0.95)),
    }
    drawn = search.draw(dists, 200, seed=3)
    assert drawn == search.draw(dists, 200, seed=3)
    assert drawn != search.draw(dists, 200, seed=4)
    lrs = np.array([d["lr"] for d in drawn])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-2
    assert lrs.min() < 3e-4 and lrs.max() > 3e-3  # spread over the whole log range
    assert all(0 <= d["model.dropout_rate"] <= 0.5 for d in drawn)
    assert {d["optimizer.b1"] for d in drawn} == {0.8, 0.9, 0.95}


def test_a_key_draws_the_same_values_whatever_else_is_searched():
    lr = {"lr": Distribution("loguniform", (1e-4, 1e-2))}
    more = lr | {"model.dropout_rate": Distribution("uniform", (0, 0.5))}
    assert [d["lr"] for d in search.draw(lr, 8, 0)] == [d["lr"] for d in search.draw(more, 8, 0)]


@pytest.mark.parametrize(
    "members, eta, rung_epochs, max_epochs, expected",
    [
        (9, 3, 1, 30, [(9, 1), (3, 2), (1, 3)]),
        (16, 2, 2, 30, [(16, 2), (8, 4), (4, 6), (2, 8), (1, 10)]),
        (10, 3, 1, 30, [(10, 1), (3, 2), (1, 3)]),
        (27, 3, 2, 5, [(27, 2), (9, 4)]),  # the budget ends it
        (1, 3, 1, 30, [(1, 1)]),
    ],
)
def test_halving_rungs(members, eta, rung_epochs, max_epochs, expected):
    assert search.rungs(members, eta, rung_epochs, max_epochs) == expected


def test_ranking_puts_nan_last_and_keeps_ties_in_order():
    assert search.ranking([0.5, float("nan"), 0.9, 0.5, 0.1]) == [2, 0, 3, 4, 1]


def test_search_options_are_checked_and_set_by_keys():
    given = overrides.parse_all(["search=halving", "search.samples=9", "lr=1e-3", "search.eta=2"])
    rest, found = search.split_overrides(given, search.Search())
    assert [o.key for o in rest] == ["lr"]
    assert found == search.Search("halving", samples=9, eta=2)
    with pytest.raises(ConfigError, match="search takes one of random, halving, pbt"):
        search.Search("grid")
    with pytest.raises(ConfigError, match="search.eta takes a whole number of at least 2"):
        search.Search("halving", eta=1)


# --- PBT's step on a stacked state of 8 small MLP members ----------------------------------------

SPEC = spec.TrainSpec(
    model_name="mlp",
    model_settings=(("hidden", (16,)),),
    float_keys=("lr", "optimizer.b1", "model.dropout_rate"),
)
EXPLORE = pbt.Explore(
    keys=("lr", "optimizer.b1"),
    kinds=("loguniform", "choice"),
    values=((1e-4, 1e-2), (0.8, 0.9, 0.95)),
)


def population(members=8):
    """8 members with distinct parameters (different seeds) and hyperparameters."""
    mesh = devices.make_mesh(devices.local_devices(1), {"data": 1, "members": 1}, 100)
    hparams = {
        "lr": jnp.geomspace(1e-4, 1e-2, members).astype(jnp.float32),
        "optimizer.b1": jnp.tile(jnp.array([0.8, 0.9, 0.95, 0.9]), members // 4),
        "model.dropout_rate": jnp.zeros(members),
    }
    seeds = jnp.arange(members, dtype=jnp.int32)
    return train.init_members(SPEC, mesh, seeds, hparams, (28, 28, 1))


def test_pbt_copies_the_best_into_the_worst_exactly_and_perturbs_in_bounds():
    state = population()
    before = jax.device_get(state)
    scores = jnp.array([0.1, 0.9, 0.5, 0.2, 0.8, 0.4, 0.3, 0.7])  # best 1 and 4, worst 0 and 3
    after, source = pbt.exploit_explore(state, scores, jax.random.key(0), EXPLORE)
    after, source = jax.device_get((after, source))
    assert set(source[[0, 3]]) <= {1, 4}
    assert list(source[[1, 2, 4, 5, 6, 7]]) == [1, 2, 4, 5, 6, 7]
    for m in range(8):
        s = int(source[m])
        for new, old in zip(
            jax.tree.leaves(after.params), jax.tree.leaves(before.params), strict=True
        ):
            np.testing.assert_array_equal(new[m], old[s])
        adam_mu = after.opt_state.inner_state[0].mu
        np.testing.assert_array_equal(
            jax.tree.leaves(adam_mu)[0][m],
            jax.tree.leaves(before.opt_state.inner_state[0].mu)[0][s],
        )
        own_key = jax.random.key_data(after.key[m]), jax.random.key_data(before.key[m])
        np.testing.assert_array_equal(*own_key)  # each keeps its own dropout stream
    for m in (0, 3):
        s = int(source[m])
        lr, old_lr = after.hparams["lr"][m], before.hparams["lr"][s]
        assert 1e-4 <= lr <= 1e-2
        b1 = after.hparams["optimizer.b1"][m]
        assert b1 in np.float32([0.8, 0.9, 0.95])
        assert after.opt_state.hyperparams["b1"][m] == b1  # the optimizer uses the new value
        assert after.hparams["model.dropout_rate"][m] == 0  # not searched: copied unchanged
        assert lr != old_lr  # moved by a factor, or resampled


def test_pbt_perturbations_stay_in_range_and_reach_both_factors():
    key_values = jnp.full(4000, 0.45, jnp.float32)
    moved = np.asarray(pbt.perturb(jax.random.key(1), key_values, "uniform", (0.0, 0.5)))
    assert moved.min() >= 0 and moved.max() <= 0.5
    assert np.isclose(moved, 0.36).mean() > 0.3  # x0.8
    assert np.isclose(moved, 0.5).mean() > 0.3  # x1.25, clipped to the range's end
    resampled = ~np.isclose(moved, 0.36) & ~np.isclose(moved, 0.5)
    assert 0.1 < resampled.mean() < 0.3


def test_pbt_step_compiles_once_for_a_population():
    state = population()
    before = pbt.exploit_explore._cache_size()
    for step in range(3):
        scores = jax.random.uniform(jax.random.key(step), (8,))
        state, _ = pbt.exploit_explore(state, scores, jax.random.key(step), EXPLORE)
    assert pbt.exploit_explore._cache_size() - before <= 1


def test_a_diverged_member_is_replaced_by_a_healthy_one():
    state = population()
    state = state.replace(diverged=state.diverged.at[2].set(True))
    scores = jnp.array([0.5, 0.6, jnp.nan, 0.7, 0.8, 0.9, 0.4, 0.3])
    after, source = pbt.exploit_explore(state, scores, jax.random.key(0), EXPLORE)
    assert int(source[2]) in (4, 5) and not bool(after.diverged[2])
