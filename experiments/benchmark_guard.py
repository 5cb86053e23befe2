"""What the divergence guard costs: `five_layer_relu`'s compiled epoch with the standard step
(`steps.keep_finite` at every step) against the same step without it, for a lone run and an
8-member learning-rate sweep, interleaved round after round in one process.

    python -m experiments.benchmark_guard [--data-dir D] [--epochs 3] [--rounds 5]

Prints, for each, the median compiled epoch (each run's first, which compiles, dropped) with and
without the guard, their ratio and every round's. The unguarded step exists here only, to be
measured against: a run without the guard would go on training a member whose loss is NaN.
"""

import argparse
import statistics

import jax

import mnist_jax
from experiments.benchmark_logs import SWEEP_RATES
from experiments.five_layer_relu import CONFIG
from mnist_jax import metrics, steps


@steps.TRAIN_STEPS.register("unguarded")
def unguarded(spec, state, batch, key):
    """`steps.standard` without `keep_finite`: the state steps whatever the loss."""
    x_BxHxWxC, y_BxK = batch
    model, loss_fn = spec.model(state.hparams), spec.loss(state.hparams)

    def objective(params):
        logits_BxK, seen = steps.forward(spec, model, params, x_BxHxWxC, key)
        return loss_fn(logits_BxK, y_BxK, params), (logits_BxK, seen)

    (loss, (logits_BxK, seen)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    stepped, learning_rate = steps.apply_gradients(spec, state, grads)
    observed = metrics.Observed(
        logits_BxK, y_BxK, loss, state.params, grads, learning_rate, x_BxHxWxC, seen
    )
    return stepped, steps.observe(spec, observed)


def epoch_seconds(overrides: list[str], data_dir: str | None) -> float:
    """The median compiled epoch after the first."""
    result = mnist_jax.train_and_evaluate(CONFIG, overrides, data_dir=data_dir, logdir=None)
    return statistics.median(e.seconds for e in result.runs[0].history[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="tfds data dir holding mnist (default: tfds')")
    parser.add_argument("--epochs", type=int, default=3, help="per run, the first dropped")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.epochs < 2 or args.rounds < 1:
        parser.error("--epochs takes at least 2 (the first, which compiles, is dropped)")
    runs = {"lone run": [], "8-member sweep": []}
    seconds = {(what, step): [] for what in runs for step in ("standard", "unguarded")}
    for i in range(args.rounds):
        order = ("standard", "unguarded") if i % 2 == 0 else ("unguarded", "standard")
        for what, lr in (("lone run", []), ("8-member sweep", [f"lr={SWEEP_RATES}"])):
            for step in order:
                overrides = [f"epochs={args.epochs}", f"train_step={step}", *lr]
                seconds[what, step].append(epoch_seconds(overrides, args.data_dir))
    print(f"five_layer_relu's compiled epoch, medians of {args.rounds} interleaved rounds:")
    for what in runs:
        guarded, plain = seconds[what, "standard"], seconds[what, "unguarded"]
        ratio = statistics.median(guarded) / statistics.median(plain)
        rounds = [round(g / p, 3) for g, p in zip(guarded, plain, strict=True)]
        print(
            f"  {what}: with the guard {statistics.median(guarded):.3f} s, without "
            f"{statistics.median(plain):.3f} s: {ratio:.3f} x; each round's ratio {rounds}"
        )


if __name__ == "__main__":
    main()
