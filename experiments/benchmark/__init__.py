"""How fast this project is, against hand-written peers, as ratios to targets, in one run.

Every variant runs in a fresh process, interleaved round-robin (A B C ... A B C ..., `--rounds`
times) so that a slow spell of the host hits them all alike, after one untimed warm-up round of
1-epoch processes that fills the caches a user's second run finds (decoded MNIST, the OS's file
cache, and JAX's compilation cache, kept private to the benchmark in its temporary folder through
$MNIST_JAX_COMPILE_CACHE: a user's own cache is neither read nor written). Per process the first
epoch (compilation, warm-up) is dropped and the median of the rest kept; per variant the median
over rounds. Prints one table of the variants, then every comparison as its two figures and the
ratio against its target, pass or fail.

    python -m experiments.benchmark --rounds 5 --epochs 5 [--long-epochs 10] [--json bench.json]
    python -m experiments.benchmark --rounds 1 --epochs 3 --long-epochs 3   # a quick check
    python -m experiments.benchmark --accelerator [--members 1,8,64,256]    # a GPU or TPU host
    python -m experiments.benchmark --only cnn,torch_cnn --rounds 3          # the CNN alone

The variants:
- seconds per epoch: this project (five_layer_relu) in float32 with TensorBoard logs and with
  `--no-logs`, in `--dtype bfloat16`, as an 8-member learning-rate sweep; five_layer_relu_dropout
  as an 8-member learning-rate sweep and as an 8-member dropout-rate sweep; then the peers of
  `experiments/peers/`: plain JAX always, PyTorch eager, torch.compile and Keras 3 on JAX when
  installed (`pip install -e .[bench]`). Adding a peer is one line in `variants.VARIANTS`.
- the lab's CNN: `experiments.gorner_cnn` (its convolutions as `model.conv=auto` picks them)
  against the same network in PyTorch eager (`experiments/peers/torch_cnn.py`), each process two
  epochs, the first dropped.
- whole processes: `python -m experiments.five_layer_relu --epochs 1` and `--epochs 10` as a
  user runs them (logs written, progress printed), against the same job written by hand in
  `experiments/peers/plain_jax_tbx.py`, which reads the four gzip IDX files: the benchmark writes
  them from the prepared dataset (gzip level 6) unless `--mnist DIR` names the originals.
- start-up: the project's `startup_seconds` (process start to first step), and a fresh process
  loading both MNIST splits with `data.load_mnist` (its imports not counted).
- around the epoch: (sum of `wall_seconds` - `seconds`) / sum of `seconds` over the epochs after
  the first, from the project's JSON: evaluation, metric transfer, handing the logs to the writer
  thread and everything else between two compiled epochs, as a share of training.

`--accelerator` times, on whatever JAX's default backend is, five_layer_relu as learning-rate
sweeps of `--members` members (1 is a single run), without logs: steady epoch seconds, training
examples per second (members x 60,000 / epoch seconds) and each member's cost against a run alone.

Only measured numbers are printed: a sweep's test accuracy is its best member's; `others` is the
share of the CPUs that other processes took during a variant's runs (/proc/stat less the child's
CPU time), a warning that the host was not quiet.

The package: `variants` (what runs), `inputs` (what the processes read), `running` (fresh
processes, interleaved), `parsing` (what each kind of process reports), `summary` (medians and
targets), `report` (the tables), `main` (the command line).
"""
