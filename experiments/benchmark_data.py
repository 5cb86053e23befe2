"""Seconds a fresh process takes to import mnist_jax.data and load both MNIST splits into memory
with `load_mnist` (target, warm: at most 0.5 s).

The dataset must be prepared first, e.g. `python -m mnist_jax.data prepare ../shared/mnist
--data-dir D`. Each repeat is a new Python process (what a user waits for at start-up) that
imports `mnist_jax.data`, loads train and test, and says whether it imported tensorflow_datasets;
the first repeat is kept (it is the cold one when the cache of decoded arrays is missing), and
the median over repeats is printed with the minimum and maximum.

    python -m experiments.benchmark_data [--data-dir D] [--repeats 5]

Measured, warm (cache present), on the 2-core AMD EPYC development machine while other jobs kept
its load average at 6-7: median 0.36-0.52 s in four runs of 5 repeats (import 0.21-0.32 s +
loads 0.15-0.21 s), tensorflow_datasets imported in none; before the cache was read without
tfds, 1.21-1.27 s in the same runs, interleaved (import 1.0 s, most of it tfds). Of the loads,
~0.1 s is the BLAKE2b of the 27 MB of array_record files that keys the cache (the fastest of
hashlib's on that CPU: SHA-256 takes 1.6 times as long). Cold (no cache: tfds imported, Pillow
decodes, the cache is written), the first repeat took 11-12.5 s under that load.
"""

import argparse
import json
import statistics
import subprocess
import sys

# Run in a fresh process: the seconds to import and to load, and whether tfds came with them.
_ONE_RUN = """
import json, sys, time
start = time.perf_counter()
from mnist_jax import data
imported = time.perf_counter()
train_images, _ = data.load_mnist("train", data_dir=sys.argv[1] or None)
test_images, _ = data.load_mnist("test", data_dir=sys.argv[1] or None)
done = time.perf_counter()
print(json.dumps({
    "import_s": imported - start, "load_s": done - imported, "total_s": done - start,
    "shapes": [train_images.shape, test_images.shape],
    "tfds": "tensorflow_datasets" in sys.modules,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="tfds data dir holding mnist (default: tfds')")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    runs = []
    for _ in range(args.repeats):
        command = [sys.executable, "-c", _ONE_RUN, args.data_dir or ""]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"error: {result.stderr.strip().splitlines()[-1]}")
        runs.append(json.loads(result.stdout))
    total = [run["total_s"] for run in runs]
    median = {k: statistics.median(run[k] for run in runs) for k in ("import_s", "load_s")}
    train_shape, test_shape = runs[-1]["shapes"]
    tfds_runs = sum(run["tfds"] for run in runs)
    spread = f"min {min(total):.2f}, max {max(total):.2f}, first {total[0]:.2f}"
    print(
        f"import mnist_jax.data + load_mnist train {tuple(train_shape)} + test {tuple(test_shape)}"
        f" in a fresh process: median {statistics.median(total):.2f} s over {args.repeats} repeats"
        f" (import {median['import_s']:.2f} s + loads {median['load_s']:.2f} s; {spread});"
        f" tensorflow_datasets imported in {tfds_runs} of {args.repeats}; target warm <= 0.5 s"
    )


if __name__ == "__main__":
    main()
