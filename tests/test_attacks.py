"""FGSM and PGD (`mnist_jax.attacks`): exact on a linear loss, inside the budget and the pixel
range; on a model trained on the real MNIST, `evaluate --attack` finds FGSM's accuracy below
the clean one and PGD's below FGSM's."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from trained_runs import mnist_checkpoint

from mnist_jax import attacks, evaluate


def linear_loss(w):
    return lambda x: jnp.sum(w * x)


@pytest.mark.parametrize("attack", [attacks.fgsm, attacks.pgd])
def test_an_attack_on_a_linear_loss_moves_every_pixel_by_epsilon_along_its_weight(attack):
    w = jnp.array([[1.0, -2.0, 0.5], [-0.1, 3.0, -4.0]])
    x = jnp.array([[0.5, 0.5, 0.99], [0.02, 0.3, 0.7]])
    moved = attack(linear_loss(w), x, 0.05, 0.0, 1.0)
    expected = np.clip(np.asarray(x) + 0.05 * np.sign(np.asarray(w)), 0.0, 1.0)
    np.testing.assert_allclose(moved, expected, rtol=0, atol=1e-7)


def test_pgd_stays_inside_the_budget_and_the_range():
    x = jax.random.uniform(jax.random.key(0), (64, 8))
    w = jax.random.normal(jax.random.key(1), (8, 3))

    def loss(x):  # curved: the steps change direction
        return jnp.sum(jnp.sin(3.0 * x @ w) ** 2)

    adv = attacks.pgd(loss, x, 0.1, 0.0, 1.0, steps=7)
    assert float(jnp.abs(adv - x).max()) <= 0.1 + 1e-6
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    assert float(loss(adv)) > float(loss(attacks.fgsm(loss, x, 0.1, 0.0, 1.0))) > float(loss(x))


def test_fgsm_is_below_clean_and_pgd_below_fgsm_on_a_trained_model(
    mnist_data_dir, tmp_path, capsys
):
    ckpt, _, data_dir = mnist_checkpoint(mnist_data_dir)
    figures = {}
    for method in ("fgsm", "pgd"):
        path = tmp_path / f"{method}.json"
        evaluate.main(
            [ckpt, "--data-dir", data_dir, "--attack", method, "--epsilon", "0.05,0.1",
             "--json", str(path)]
        )  # fmt: skip
        figures[method] = json.loads(path.read_text())["attack"]
    out = capsys.readouterr().out
    assert "accuracy under pgd (10 step(s) of 2.5 * epsilon / 10;" in out
    fgsm, pgd = figures["fgsm"], figures["pgd"]
    assert fgsm["clean"] == pgd["clean"] and len(fgsm["clean"]) == 2
    for m, clean in enumerate(fgsm["clean"]):
        assert clean > 0.85
        for e in range(2):
            assert pgd["accuracy"][m][e] < fgsm["accuracy"][m][e] < clean
    assert pgd["steps"] == attacks.PGD_STEPS and pgd["ranges"] == [[0.0, 1.0]] * 2


def test_epsilon_without_an_attack_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        evaluate.main(["ckpt", "--epsilon", "0.1"])
    assert info.value.code == 2 and "--epsilon needs --attack" in capsys.readouterr().err
