"""The numbers the report quotes, from a sweep's JSON runs: mean ± std over seeds, a schedule in
words, binary accuracy's 2-of-10 arithmetic, and the runs that ended at chance."""

import math
import statistics

from mnist_jax import losses

OUTPUTS = 10  # MNIST classes: the outputs binary accuracy averages over


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and the sample standard deviation (n - 1), the spread over seeds."""
    return statistics.mean(values), statistics.stdev(values)


def pm(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:.4f} ± {std:.4f}"


def column(report: dict, key: str) -> list[float]:
    return [run[key] for run in report["runs"]]


def schedule_text(config: dict) -> str:
    """E.g. `adam 0.001, 30 epochs` or `adam lab_decay from 0.003, 10000 steps`."""
    lr = config["lr"]
    schedule = config["schedule_name"]
    rate = f"{lr:g}" if schedule == "constant" else f"{schedule} from {lr:g}"
    length = f"{config['epochs']} epochs" if config["steps"] is None else f"{config['steps']} steps"
    return f"{config['optimizer_name']} {rate}, {length}"


def predicted_binary_accuracy(accuracy: float) -> float:
    """Binary accuracy if every wrong argmax costs 2 of the outputs and every right one none."""
    return 1 - 2 * (1 - accuracy) / OUTPUTS


def outputs_wrong_per_error(accuracy: float, binary_accuracy: float) -> float:
    """Wrong outputs per misclassified image, were all of them due to the misclassified ones."""
    return OUTPUTS * (1 - binary_accuracy) / (1 - accuracy)


def accuracy_from_binary(binary_accuracy: float) -> float:
    """The inverse of `predicted_binary_accuracy`: the accuracy a binary figure stands for."""
    return 1 - OUTPUTS * (1 - binary_accuracy) / 2


def stuck(report: dict) -> list[dict]:
    """Runs that ended below twice chance: they learned nothing that shows."""
    return [run for run in report["runs"] if run["test_accuracy"] < 2 / OUTPUTS]


def saturated_loss() -> float:
    """Binary cross-entropy of a softmax saturated on one class at Keras's clip, over images of
    every class equally: a wrong image costs ln(1/eps) on its true output and on the chosen one."""
    return (1 - 1 / OUTPUTS) * 2 * -math.log(losses.KERAS_EPSILON) / OUTPUTS
