"""The reproduction report: every MNIST experiment in the tutorial's exact setting and corrected,
seeds 0, 1 and 2, against the tutorial's and the lab's own numbers, written as markdown.

    python -m experiments.report [--quick] [--out FILE] [--data-dir DIR] [--logdir DIR]

The tutorial's setting is each config's `tutorial_setting()` (raw pixels, binary cross-entropy,
its optimizer and rate); corrected is the config as it stands (pixels / 255, categorical
cross-entropy). The three seeds of a setting train together as one compiled sweep. `--quick`
trains a few steps per run so CI can check the whole pipeline; its numbers mean nothing, so it
writes REPORT.quick.md (git-ignored), not the committed REPORT.md, unless `--out` is given, and
its logs go to a temporary folder removed at the end, not among real runs' logs in `logs/`
(`--logdir` keeps them where it says).
The report names no absolute path of the machine it ran on: the command it prints leaves out
`--data-dir` (where this machine keeps MNIST) and shows an absolute `--out` or `--logdir` as
OUT or LOGDIR.
Every figure and verdict in the file is computed from the runs; `render` and the functions it
calls are pure, so they are tested on hand-made runs.
"""

# The package: `main` (the command line: the runs and their provenance), `markdown` (the report
# as text), `claims` (the tutorial's claims checked), `figures` (the numbers it quotes).

# What the report trains, shared by the runs (`main`) and the text that describes them.
SETTINGS = ("tutorial", "corrected")
SEEDS = (0, 1, 2)
QUICK_STEPS = 3
