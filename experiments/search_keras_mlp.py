"""Successive halving over Keras' `mnist_mlp` (`keras_mnist_mlp`): 9 settings of the learning
rate and the dropout rate drawn at random, chosen on 5,000 validation images held out of the
training set; 9 train one epoch, the best 3 a second, the best of those a third.

    python -m experiments.search_keras_mlp

is `python -m experiments.keras_mnist_mlp` with these settings, each replaceable on the command
line (`--samples 27`, `--search pbt`, `lr=loguniform(1e-5,1e-2)`, ...):

    --search halving --samples 9 --eta 3 --rung-epochs 1 val_split=5000 epochs=3
    lr=loguniform(1e-4,3e-3) model.dropout_rate=uniform(0,0.5)

Measured (seed 0, search seed 0, this 2-core CPU while other jobs kept its load average near
10; `python -m experiments.search_keras_mlp --data-dir D --json OUT.json`): the 9 members'
first epoch took 102 s (compiling included), the 3 survivors' second 48 s, the last one's third
23 s: 173 s of training for 13 member-epochs, where random search over the same 9 draws (their
full grid) trains 27. The rungs kept the highest rates: after epoch 1 the best three by
validation accuracy were lr 0.00285, 0.00138 and 0.00178 (0.9562, 0.9554, 0.9538), and after
epoch 2 lr 0.00138 with dropout 0.209 (0.9728). It reached validation accuracy 0.9672 and test
accuracy 0.9681 after its third epoch (test loss 0.1100), and the command printed to train it
alone is

    python -m experiments.keras_mnist_mlp lr=0.0013751181025712033 epochs=3 val_split=5000
        model.dropout_rate=0.2091915571118268

Three epochs are a short budget: Keras' own setting reaches 0.9830 in 20 (`keras_mnist_mlp`).
The search's run directories and JSON name the experiment `keras_mnist_mlp`, whose config it
searches.
"""

from experiments.keras_mnist_mlp import CONFIG
from mnist_jax import cli

SEARCH = (
    "search=halving",
    "search.samples=9",
    "search.eta=3",
    "search.rung_epochs=1",
    "val_split=5000",
    "epochs=3",
    "lr=loguniform(1e-4,3e-3)",
    "model.dropout_rate=uniform(0,0.5)",
)

if __name__ == "__main__":
    cli.main(CONFIG, defaults=SEARCH)
