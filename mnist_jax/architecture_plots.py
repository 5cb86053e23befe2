"""Pictures of models as the tutorial drew them with Keras' `model_to_dot`: its first and last
models, `python -m mnist_jax.plots LOGDIR --architectures`."""

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from mnist_jax import models

INPUT_SHAPE = (28, 28, 1)
STANDARD_MODELS = {  # file name: (title, model name, settings)
    "softmax_regression": ("Softmax regression", "softmax", {}),
    "five_layer_mlp_dropout": (
        "Five-layer ReLU MLP, dropout 0.25",
        "mlp",
        {"activation": "relu", "dropout_rate": 0.25, "dropout_after": [2, 3, 4]},
    ),
}
LAYER_COLOURS = {"Input": "#d9ead3", "Dense": "#cfe2f3", "Dropout": "#eeeeee"}


def draw_architecture(rows: Sequence[tuple], path: str | Path, title: str) -> Path:
    """A vertical stack of layer boxes (name, type, output shape, parameters) joined by arrows,
    and the total: the picture the tutorial drew with Keras' `model_to_dot`."""
    n = len(rows)
    fig = Figure(figsize=(4.5, 0.8 + 0.8 * n))
    ax = fig.add_subplot()
    ax.set(xlim=(0, 1), ylim=(-0.7, n), title=title)
    ax.axis("off")
    for i, (name, kind, shape, n_params) in enumerate(rows):
        y = n - 1 - i
        box = FancyBboxPatch(
            (0.1, y + 0.15), 0.8, 0.6, boxstyle="round,pad=0.02",
            facecolor=LAYER_COLOURS.get(kind, "#fff2cc"), edgecolor="#444444",
        )  # fmt: skip
        ax.add_patch(box)
        ax.text(0.5, y + 0.56, f"{name}: {kind}", ha="center", va="center", weight="bold")
        ax.text(0.5, y + 0.32, f"output {shape}   {n_params:,} params", ha="center", va="center")
        if i:
            ax.annotate("", (0.5, y + 0.77), (0.5, y + 1.13), arrowprops={"arrowstyle": "->"})
    total = sum(row[3] for row in rows)
    ax.text(0.5, -0.3, f"Total params: {total:,}", ha="center", va="center", weight="bold")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return Path(path)


def draw_standard(outdir: str | Path) -> list[Path]:
    """The tutorial's first and last models, each preceded by its input as Keras draws it."""
    Path(outdir).mkdir(parents=True, exist_ok=True)
    input_row = ("input", "Input", (None, *INPUT_SHAPE), 0)
    return [
        draw_architecture(
            [input_row, *models.layer_table(models.build(model, settings), INPUT_SHAPE)],
            Path(outdir) / f"architecture_{name}.png",
            title,
        )
        for name, (title, model, settings) in STANDARD_MODELS.items()
    ]
