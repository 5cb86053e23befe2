"""The tutorial's section on activation functions, as figures and tables.

Reproduces section 3 ("激活函数") of the tutorial: a circle made linearly separable by
(x, y) -> (x², y²); the XOR truth table; the hand-built two-layer threshold network that
computes XOR, and its hidden layer where the four points become linearly separable. Beyond the
tutorial: a linear model trained on XOR fails while a tiny MLP succeeds, and the sigmoid and
ReLU derivatives show the saturation the tutorial blames for vanishing gradients.

    python -m experiments.activations [--outdir figures/activations] [--seed 0]

Measured (seed 0, CPU, about 5 s): in (x², y²) the line x² + y² = 1 separates 100/100 points;
the threshold network's output equals XOR on all 4 inputs; after 500 full-batch Adam steps the
linear model sits at its optimum w = b = 0, P(z = 1) = ½ on every input, loss 0.6931 = ln 2, and
its accuracy of 25 % is float rounding breaking those ties (no line can exceed 75 %); the 2-8-1
tanh MLP reaches 100 % (loss 0.0002); sigmoid' peaks at 0.25 and is below 0.01 for |x| > 4.58.
"""

import argparse
import functools
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

OUTDIR = "figures/activations"
SEED = 0
POINTS_PER_CLASS = 50

# The tutorial's row order for XOR: (1,1), (0,0), (1,0), (0,1).
XOR_XY_4x2 = np.array([[1, 1], [0, 0], [1, 0], [0, 1]])

# The hand-built network: hidden units (left: x, middle: x AND y, right: y), output weights.
HIDDEN_W_2x3 = np.array([[1, 1, 0], [0, 1, 1]])
HIDDEN_THRESHOLD_3 = np.array([0, 1, 0])
OUTPUT_W_3 = np.array([1, -2, 1])
EXPECTED_HIDDEN_4x3 = np.array([[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 0, 1]])

TRAIN_STEPS = 500
LEARNING_RATE = 0.05
MLP_HIDDEN = 8

SIGMOID_PEAK_GRAD = 0.25
TINY_GRAD = 0.01
ACTIVATION_RANGE = 8.0

# Figure colours, one per class: inside the circle / XOR 0, outside / XOR 1.
CLASS_COLOURS = ("tab:blue", "tab:orange")
# Colour bands for P(z = 1), with one band centred on ½ so that "undecided" reads as white.
PROBA_LEVELS = np.concatenate([[0], np.arange(0.05, 1, 0.1), [1]])


# ---- the circle -------------------------------------------------------------------------------


def circle_points(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """50 points inside and 50 outside the unit circle, as the tutorial drew them.

    Radii are uniform in [0, 1) inside and [1, 2) outside, angles uniform; returns
    (points_Nx2, outside_N) with outside_N True for the points beyond the circle.
    """
    rng = np.random.default_rng(seed)
    angle_N = rng.uniform(0, 2 * np.pi, 2 * POINTS_PER_CLASS)
    outside_N = np.arange(2 * POINTS_PER_CLASS) >= POINTS_PER_CLASS
    radius_N = rng.uniform(0, 1, 2 * POINTS_PER_CLASS) + outside_N
    points_Nx2 = radius_N[:, None] * np.stack([np.cos(angle_N), np.sin(angle_N)], axis=1)
    return points_Nx2, outside_N


def square_features(points_Nx2: np.ndarray) -> np.ndarray:
    """(x, y) -> (x², y²): the circle x² + y² = 1 becomes the line u + v = 1."""
    return points_Nx2**2


def line_separates(squares_Nx2: np.ndarray, outside_N: np.ndarray) -> np.ndarray:
    """Per point: is it on its own class's side of u + v = 1 (strictly)?"""
    total_N = squares_Nx2.sum(axis=1)
    return np.where(outside_N, total_N > 1, total_N < 1)


# ---- XOR and the threshold network ------------------------------------------------------------


def xor_table() -> tuple[np.ndarray, np.ndarray]:
    """XOR in the tutorial's row order: (xy_4x2, z_4)."""
    return XOR_XY_4x2, XOR_XY_4x2[:, 0] ^ XOR_XY_4x2[:, 1]


def threshold_network(xy_Nx2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's two-layer threshold network: (hidden_Nx3, out_N).

    A hidden unit fires when its weighted sum is strictly greater than its threshold, the
    tutorial's `if AX+BY > 1`. With >= instead, the x-alone unit (threshold 0) would fire on
    every input and the AND unit (threshold 1) on (1, 0) and (0, 1). The output is the plain
    dot product with (1, -2, 1), as the tutorial wrote it; it is already 0 or 1 here.
    """
    hidden_Nx3 = (xy_Nx2 @ HIDDEN_W_2x3 > HIDDEN_THRESHOLD_3).astype(int)
    return hidden_Nx3, hidden_Nx3 @ OUTPUT_W_3


def format_xor_table(xy_4x2: np.ndarray, z_4: np.ndarray) -> str:
    """The truth table laid out as the tutorial's pandas DataFrame printed it."""
    rows = ["   x  y  z"] + [
        f"{i}  {x}  {y}  {z}" for i, ((x, y), z) in enumerate(zip(xy_4x2, z_4, strict=True))
    ]
    return "\n".join(rows)


def format_network_table(xy_4x2: np.ndarray, hidden_4x3: np.ndarray, out_4: np.ndarray) -> str:
    """Inputs, the three hidden units (left, middle, right), output and XOR, one row per input."""
    rows = ["   x  y | left  mid  right | output  xor"]
    for i, ((x, y), (left, mid, right), out) in enumerate(
        zip(xy_4x2, hidden_4x3, out_4, strict=True)
    ):
        rows.append(f"{i}  {x}  {y} |  {left}     {mid}     {right}   |   {out}      {x ^ y}")
    return "\n".join(rows)


# ---- training on XOR --------------------------------------------------------------------------


class XorMLP(nn.Module):
    """2 -> hidden (tanh) -> 1 logit: the smallest kind of net that can bend its boundary."""

    hidden: int = MLP_HIDDEN

    @nn.compact
    def __call__(self, xy_Nx2):
        return nn.Dense(1)(nn.tanh(nn.Dense(self.hidden)(xy_Nx2)))


def xor_data() -> tuple[jax.Array, jax.Array]:
    """XOR as float arrays for training: (xy_4x2, z_4)."""
    xy_4x2, z_4 = xor_table()
    return jnp.asarray(xy_4x2, jnp.float32), jnp.asarray(z_4, jnp.float32)


def predict_proba(model: nn.Module, params, xy_Nx2: jax.Array) -> jax.Array:
    """P(z = 1) for each point."""
    return jax.nn.sigmoid(model.apply(params, xy_Nx2)[:, 0])


@functools.partial(jax.jit, static_argnames=("model", "steps", "learning_rate"))
def _fit(model: nn.Module, params, steps: int, learning_rate: float):
    """Full-batch Adam on XOR's binary cross-entropy, the whole loop one lax.scan."""
    xy_4x2, z_4 = xor_data()
    tx = optax.adam(learning_rate)

    def loss_fn(params):
        logits_4 = model.apply(params, xy_4x2)[:, 0]
        return optax.sigmoid_binary_cross_entropy(logits_4, z_4).mean()

    def step(carry, _):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), losses_T = jax.lax.scan(step, (params, tx.init(params)), length=steps)
    return params, losses_T


def train_xor(
    model: nn.Module,
    steps: int = TRAIN_STEPS,
    seed: int = SEED,
    learning_rate: float = LEARNING_RATE,
) -> tuple[dict, np.ndarray, float]:
    """Train `model` (one logit out) on XOR: (params, losses_T, accuracy).

    losses_T[t] is the loss before update t; accuracy thresholds P(z = 1) at 0.5.
    """
    xy_4x2, z_4 = xor_data()
    params = model.init(jax.random.key(seed), xy_4x2)
    params, losses_T = _fit(model, params, steps, learning_rate)
    correct_4 = (predict_proba(model, params, xy_4x2) > 0.5) == (z_4 > 0.5)
    return params, np.asarray(losses_T), float(correct_4.mean())


# ---- activations ------------------------------------------------------------------------------


def derivative(fn, x_N: jax.Array) -> jax.Array:
    """Elementwise derivative of a scalar activation."""
    return jax.vmap(jax.grad(fn))(x_N)


def sigmoid_saturation_edge(tiny_grad: float = TINY_GRAD) -> float:
    """The |x| beyond which sigmoid'(x) < tiny_grad.

    sigmoid'(x) = 1 / (4 cosh²(x / 2)), so the edge is 2 arccosh(1 / (2 sqrt(tiny_grad))).
    """
    return float(2 * np.arccosh(1 / (2 * np.sqrt(tiny_grad))))


# ---- figures ----------------------------------------------------------------------------------


def plot_circle(points_Nx2, squares_Nx2, outside_N, path: pathlib.Path) -> None:
    """The circle, then the same points after squaring, split by the line x² + y² = 1."""
    n_separated = int(line_separates(squares_Nx2, outside_N).sum())
    fig, (ax_xy, ax_sq) = plt.subplots(1, 2, figsize=(11, 5.6), layout="constrained")
    t_T = np.linspace(0, 2 * np.pi, 200)
    ax_xy.plot(np.cos(t_T), np.sin(t_T), "k-", lw=1.5, label="circle $x^2 + y^2 = 1$")
    u_T = np.linspace(-0.2, 4.2, 2)
    ax_sq.plot(u_T, 1 - u_T, "k-", lw=1.5, label="line $x^2 + y^2 = 1$")
    for ax, pts_Nx2 in ((ax_xy, points_Nx2), (ax_sq, squares_Nx2)):
        for cls, name in ((False, "inside"), (True, "outside")):
            sel_N = outside_N == cls
            ax.scatter(*pts_Nx2[sel_N].T, s=30, alpha=0.7, c=CLASS_COLOURS[cls], label=name)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right")
    ax_xy.set(
        title="Not linearly separable in (x, y)",
        xlabel="x",
        ylabel="y",
        xlim=(-2.1, 2.1),
        ylim=(-2.1, 2.1),
        aspect="equal",
    )
    ax_sq.set(
        title=f"Linearly separable in $(x^2, y^2)$: {n_separated}/{outside_N.size} points",
        xlabel="$x^2$",
        ylabel="$y^2$",
        xlim=(-0.2, 4.2),
        ylim=(-0.2, 4.2),
        aspect="equal",
    )
    fig.suptitle("A change of coordinates turns the circle into a straight line")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_xor_hidden_space(xy_4x2, hidden_4x3, z_4, path: pathlib.Path) -> None:
    """XOR's points in the input plane, then in the threshold network's hidden space."""
    fig = plt.figure(figsize=(12, 6.4), layout="constrained")
    ax_in = fig.add_subplot(1, 2, 1)
    ax_h = fig.add_subplot(1, 2, 2, projection="3d", computed_zorder=False)
    # The output weights define the plane: left - 2 mid + right = 1/2.
    left_GxG, right_GxG = np.meshgrid(np.linspace(0, 1, 2), np.linspace(0, 1, 2))
    mid_GxG = (left_GxG + right_GxG - 0.5) / 2
    ax_h.plot_surface(left_GxG, mid_GxG, right_GxG, alpha=0.3, color="tab:green", zorder=1)
    ax_h.plot([], [], "s", color="tab:green", alpha=0.5, label="plane left − 2·mid + right = ½")
    for cls in (0, 1):
        sel_4 = z_4 == cls
        kw = dict(s=140, c=CLASS_COLOURS[cls], edgecolors="k", label=f"z = {cls}", zorder=3)
        ax_in.scatter(*xy_4x2[sel_4].T, **kw)
        ax_h.scatter(*hidden_4x3[sel_4].T, depthshade=False, **kw)
    for (x, y), h_3 in zip(xy_4x2, hidden_4x3, strict=True):
        ax_in.annotate(f"input ({x},{y})", (x, y), xytext=(12, -4), textcoords="offset points")
        ax_h.text(*(h_3 + [0.05, 0, 0.07]), f"({x},{y})", fontsize=9, zorder=4)
    ax_in.set(
        title="Input space: no line separates z = 0 from z = 1",
        xlabel="x",
        ylabel="y",
        xlim=(-0.3, 1.6),
        ylim=(-0.3, 1.3),
        aspect="equal",
    )
    ax_in.grid(alpha=0.3)
    ax_in.legend(loc="center")
    ax_h.set(
        title="Hidden space (left, mid, right): a plane separates them",
        xlabel="left unit: x > 0",
        ylabel="mid unit: x + y > 1",
        zlabel="right unit: y > 0",
        xticks=(0, 1),
        yticks=(0, 1),
        zticks=(0, 1),
        ylim=(-0.3, 1),
    )
    ax_h.view_init(elev=20, azim=20)
    ax_h.set_box_aspect(None, zoom=0.85)
    ax_h.legend(loc="upper left", fontsize=9)
    fig.suptitle("XOR through the tutorial's threshold network, output weights (1, −2, 1)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_xor_training(runs, path: pathlib.Path) -> None:
    """Loss curves, then each model's learned P(z = 1) over the unit square.

    `runs` is a list of (name, model, params, losses_T, accuracy).
    """
    xy_4x2, z_4 = xor_table()
    fig, axes = plt.subplots(
        1, 1 + len(runs), figsize=(5.4 * (1 + len(runs)), 5), layout="constrained"
    )
    axes[0].axhline(np.log(2), color="gray", ls="--", lw=1, label="ln 2: P = ½ for every input")
    for name, _, _, losses_T, accuracy in runs:
        axes[0].plot(losses_T, lw=2, label=f"{name}: final {losses_T[-1]:.4f}, acc {accuracy:.0%}")
    axes[0].set(
        title=f"Training loss on XOR (full batch, Adam {LEARNING_RATE})",
        xlabel="step",
        ylabel="binary cross-entropy (log scale)",
        yscale="log",
    )
    axes[0].grid(alpha=0.3, which="both")
    axes[0].legend(loc="center right")
    grid_G = np.linspace(-0.1, 1.1, 121)
    gx_GxG, gy_GxG = np.meshgrid(grid_G, grid_G)
    grid_Mx2 = jnp.asarray(np.stack([gx_GxG.ravel(), gy_GxG.ravel()], axis=1), jnp.float32)
    for ax, (name, model, params, _, accuracy) in zip(axes[1:], runs, strict=True):
        p_GxG = np.asarray(predict_proba(model, params, grid_Mx2)).reshape(gx_GxG.shape)
        filled = ax.contourf(gx_GxG, gy_GxG, p_GxG, levels=PROBA_LEVELS, cmap="RdBu_r")
        if p_GxG.min() < 0.45 and p_GxG.max() > 0.55:
            ax.contour(gx_GxG, gy_GxG, p_GxG, levels=[0.5], colors="k", linewidths=2)
            title = f"{name}: accuracy {accuracy:.0%}\nblack line: P(z = 1) = ½"
        else:
            spread = np.abs(p_GxG - 0.5).max()
            title = (
                f"{name}: P(z = 1) = ½ ± {spread:.0e} everywhere\n"
                f"accuracy {accuracy:.0%}: ties at ½ broken by float rounding"
            )
        for (x, y), z in zip(xy_4x2, z_4, strict=True):
            ax.scatter(x, y, s=140, c=CLASS_COLOURS[z], edgecolors="k", zorder=3)
            ax.annotate(
                f"z = {z}",
                (x, y),
                xytext=(0, 12 if y == 0 else -20),
                textcoords="offset points",
                ha="center",
                bbox=dict(boxstyle="round", fc="white", alpha=0.8),
            )
        ax.set(title=title, xlabel="x", ylabel="y", aspect="equal")
        fig.colorbar(filled, ax=ax, label="P(z = 1)", ticks=np.linspace(0, 1, 5))
    fig.suptitle("A linear model cannot learn XOR; one hidden layer can")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_activations(path: pathlib.Path) -> None:
    """Sigmoid and ReLU, and their derivatives with sigmoid's saturated zones shaded."""
    x_N = jnp.linspace(-ACTIVATION_RANGE, ACTIVATION_RANGE, 801)
    edge = sigmoid_saturation_edge()
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    ax_f.plot(x_N, jax.nn.sigmoid(x_N), lw=2, label="sigmoid(x) = 1 / (1 + e⁻ˣ)")
    ax_f.plot(x_N, jax.nn.relu(x_N), lw=2, label="ReLU(x) = max(0, x)")
    ax_f.set(title="Activations", xlabel="x", ylabel="f(x)", ylim=(-0.5, 3))
    ax_d.plot(x_N, derivative(jax.nn.sigmoid, x_N), lw=2, label="sigmoid′(x): at most ¼")
    ax_d.plot(x_N, derivative(jax.nn.relu, x_N), lw=2, label="ReLU′(x): 1 for x > 0, 0 below")
    ax_d.axhline(SIGMOID_PEAK_GRAD, color="gray", ls="--", lw=1)
    ax_d.annotate(
        "¼", (ACTIVATION_RANGE, SIGMOID_PEAK_GRAD), xytext=(-14, 4), textcoords="offset points"
    )
    ax_d.axhline(TINY_GRAD, color="gray", ls=":", lw=1)
    for side in (-1, 1):
        ax_d.axvspan(
            side * edge,
            side * ACTIVATION_RANGE,
            color="tab:red",
            alpha=0.12,
            label=f"sigmoid saturated: sigmoid′ < {TINY_GRAD}" if side == 1 else None,
        )
    ax_d.set(
        title=f"Derivatives (jax.grad): sigmoid′ < {TINY_GRAD} for |x| > {edge:.2f}",
        xlabel="x",
        ylabel="f′(x)",
        ylim=(-0.05, 1.15),
    )
    for ax in (ax_f, ax_d):
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.suptitle(
        "Vanishing gradients: each sigmoid layer scales the gradient by ≤ ¼, "
        "far less in its tails; ReLU passes it unchanged for x > 0"
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# ---- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=pathlib.Path, default=pathlib.Path(OUTDIR))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)

    points_Nx2, outside_N = circle_points(args.seed)
    squares_Nx2 = square_features(points_Nx2)
    separated_N = line_separates(squares_Nx2, outside_N)
    print(
        f"circle: in (x², y²) the line x² + y² = 1 separates "
        f"{separated_N.sum()}/{separated_N.size} points"
    )
    if not separated_N.all():
        raise RuntimeError("the line x + y = 1 failed to separate the squared points")
    plot_circle(points_Nx2, squares_Nx2, outside_N, args.outdir / "circle_transform.png")

    xy_4x2, z_4 = xor_table()
    print("\nXOR truth table:\n" + format_xor_table(xy_4x2, z_4))
    hidden_4x3, out_4 = threshold_network(xy_4x2)
    print("\nthreshold network (unit fires when weighted sum > threshold):")
    print(format_network_table(xy_4x2, hidden_4x3, out_4))
    if not (np.array_equal(hidden_4x3, EXPECTED_HIDDEN_4x3) and np.array_equal(out_4, z_4)):
        raise RuntimeError("the threshold network does not reproduce the tutorial's table")
    print("output == XOR on all 4 inputs")
    plot_xor_hidden_space(xy_4x2, hidden_4x3, z_4, args.outdir / "xor_hidden_space.png")

    runs = []
    for name, model in (("linear", nn.Dense(1)), (f"MLP 2-{MLP_HIDDEN}-1 tanh", XorMLP())):
        params, losses_T, accuracy = train_xor(model, seed=args.seed)
        runs.append((name, model, params, losses_T, accuracy))
        proba_4 = np.asarray(predict_proba(model, params, xor_data()[0]))
        print(f"\n{name} on XOR, {TRAIN_STEPS} Adam steps: accuracy {accuracy:.0%}, ", end="")
        print(f"final loss {losses_T[-1]:.4f}, P(z = 1) by row:", *(f"{p:.4f}" for p in proba_4))
    plot_xor_training(runs, args.outdir / "xor_training.png")

    x_N = jnp.linspace(-ACTIVATION_RANGE, ACTIVATION_RANGE, 801)
    peak = float(derivative(jax.nn.sigmoid, x_N).max())
    edge = sigmoid_saturation_edge()
    print(f"\nsigmoid' peaks at {peak:.4f} (x = 0) and is < {TINY_GRAD} for |x| > {edge:.2f}")
    plot_activations(args.outdir / "activations.png")
    print(f"\nfigures written to {args.outdir}/")


if __name__ == "__main__":
    main()
