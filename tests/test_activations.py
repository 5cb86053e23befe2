"""Tests for experiments.activations: the tutorial's tables, the XOR training, the figures."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest

from experiments import activations

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = ("circle_transform.png", "xor_hidden_space.png", "xor_training.png", "activations.png")


def test_threshold_network_reproduces_tutorial_table_and_is_xor():
    xy_4x2, z_4 = activations.xor_table()
    hidden_4x3, out_4 = activations.threshold_network(xy_4x2)
    np.testing.assert_array_equal(xy_4x2, [[1, 1], [0, 0], [1, 0], [0, 1]])
    np.testing.assert_array_equal(hidden_4x3, [[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(out_4, [0, 0, 1, 1])
    np.testing.assert_array_equal(out_4, xy_4x2[:, 0] ^ xy_4x2[:, 1])
    np.testing.assert_array_equal(z_4, out_4)


@pytest.mark.parametrize("seed", range(5))
def test_circle_transform_separates_all_points(seed):
    points_Nx2, outside_N = activations.circle_points(seed)
    radius_N = np.linalg.norm(points_Nx2, axis=1)
    assert outside_N.sum() == (~outside_N).sum() == activations.POINTS_PER_CLASS
    assert (radius_N[~outside_N] < 1).all() and (radius_N[outside_N] >= 1).all()
    squares_Nx2 = activations.square_features(points_Nx2)
    assert activations.line_separates(squares_Nx2, outside_N).all()


def test_circle_points_are_seeded():
    np.testing.assert_array_equal(activations.circle_points(3)[0], activations.circle_points(3)[0])
    assert not np.array_equal(activations.circle_points(3)[0], activations.circle_points(4)[0])


@pytest.mark.parametrize("seed", range(3))
def test_linear_model_fails_on_xor(seed):
    _, losses_T, accuracy = activations.train_xor(nn.Dense(1), seed=seed)
    assert accuracy <= 0.75
    assert losses_T[-1] == pytest.approx(np.log(2), abs=1e-3)


@pytest.mark.parametrize("seed", range(3))
def test_mlp_learns_xor(seed):
    _, losses_T, accuracy = activations.train_xor(activations.XorMLP(), seed=seed)
    assert accuracy == 1.0
    assert losses_T[-1] < 0.01


def test_training_is_deterministic_per_seed():
    _, losses_a, _ = activations.train_xor(activations.XorMLP(), steps=50, seed=7)
    _, losses_b, _ = activations.train_xor(activations.XorMLP(), steps=50, seed=7)
    _, losses_c, _ = activations.train_xor(activations.XorMLP(), steps=50, seed=8)
    assert losses_a.shape == (50,)
    np.testing.assert_array_equal(losses_a, losses_b)
    assert not np.array_equal(losses_a, losses_c)


def test_sigmoid_saturates_and_relu_does_not():
    x_N = jnp.linspace(-10, 10, 2001)
    sigmoid_grad_N = np.asarray(activations.derivative(jax.nn.sigmoid, x_N))
    edge = activations.sigmoid_saturation_edge()
    assert sigmoid_grad_N.max() == pytest.approx(0.25)
    assert edge == pytest.approx(4.585, abs=1e-3)
    assert (sigmoid_grad_N[np.abs(np.asarray(x_N)) > edge] < activations.TINY_GRAD).all()
    edge_grad = activations.derivative(jax.nn.sigmoid, jnp.array([edge]))[0]
    assert float(edge_grad) == pytest.approx(activations.TINY_GRAD, rel=1e-4)
    relu_grad_N = np.asarray(activations.derivative(jax.nn.relu, x_N))
    np.testing.assert_array_equal(relu_grad_N, (np.asarray(x_N) > 0).astype(np.float32))


def test_main_writes_every_figure_and_prints_tables(tmp_path, capsys):
    activations.main(["--outdir", str(tmp_path / "figs"), "--seed", "1"])
    written = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert written == sorted(FIGURES)
    for name in FIGURES:
        path = tmp_path / "figs" / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        height, width, _ = matplotlib.image.imread(path).shape
        assert height > 300 and width > 600
    out = capsys.readouterr().out
    assert "separates 100/100 points" in out
    assert "0  1  1 |  1     1     1   |   0      0" in out
    assert "output == XOR on all 4 inputs" in out
