"""The documentation against what generated it: every marked number equals docs/results.json,
every figure and relative link resolves, and the pages show the commands the generator runs."""

import json
import shutil
import subprocess

import pytest

from experiments import docs, docs_pages

RESULTS = json.loads(docs.RESULTS.read_text()) if docs.RESULTS.exists() else None
README_MAX_LINES = 250


def test_results_file_is_there():
    assert RESULTS is not None, "docs/results.json is missing: python -m experiments.docs"
    assert {"machine", "figures", *(c.key for c in docs.COMMANDS)} <= RESULTS.keys()


def test_every_marked_number_is_the_generated_one():
    wrong, seen = [], 0
    for page in docs_pages.pages():
        for key, value in docs_pages.markers(page.read_text()):
            seen += 1
            try:
                expected = docs_pages.lookup(RESULTS, key)
            except (KeyError, IndexError, TypeError, ValueError) as error:
                wrong.append(f"{page.name}: {key} is not in results.json ({error!r})")
                continue
            if value != expected:
                wrong.append(f"{page.name}: {key} reads {value!r}, results.json gives {expected!r}")
    assert not wrong, "\n".join(wrong) + "\n(python -m experiments.docs --pages-only refills them)"
    assert seen > 50  # the README and the tutorial quote their numbers through markers


def test_every_generated_figure_is_committed():
    missing = [name for name in RESULTS["figures"] if not (docs.FIGURES / name).is_file()]
    assert not missing


def test_no_figure_is_hidden_from_git():
    if shutil.which("git") is None or not (docs.ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    figures = [str(p.relative_to(docs.ROOT)) for p in docs.FIGURES.iterdir()]
    ignored = subprocess.run(
        ["git", "-C", str(docs.ROOT), "check-ignore", "--no-index", *figures],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert ignored == [], "git ignores these, so a clone lacks them"


def test_every_relative_link_and_image_resolves():
    assert not docs_pages.broken_links(), "\n".join(docs_pages.broken_links())


def test_the_tutorial_shows_every_command_the_generator_runs():
    tutorial = (docs.DOCS / "tutorial.md").read_text()
    assert [c.shown for c in docs.COMMANDS if c.shown not in tutorial] == []


def test_the_readme_is_short_and_opens_with_a_stored_figure():
    readme = (docs.ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    assert "![" in readme.split("## ")[0] and "](docs/figures/" in readme.split("## ")[0]


def test_a_stale_number_is_found_and_refilled():
    results = {"relu": {"test_accuracy": 0.98123, "epoch_ratio": 1.0}}
    page = (
        "accuracy <!--r:relu.test_accuracy-->0.9795<!--/r-->, "
        "<!--r:relu.epoch_ratio:.2f--><!--/r-->"
    )
    assert [(k, v) for k, v in docs_pages.markers(page)] == [
        ("relu.test_accuracy", "0.9795"),
        ("relu.epoch_ratio:.2f", ""),
    ]
    assert docs_pages.lookup(results, "relu.test_accuracy") == "0.9812"
    filled = docs_pages.fill(page, results)
    assert "0.9812<!--/r-->" in filled and "1.00<!--/r-->" in filled
    with pytest.raises(KeyError):
        docs_pages.lookup(results, "relu.test_loss")


def test_a_broken_link_or_anchor_is_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Its section\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md#its-section) [gone](docs/b.md) ![fig](docs/figures/x.png)\n"
        "[no heading](docs/a.md#nowhere) [web](https://example.org) `[code](not/a/link)`\n"
    )
    assert docs_pages.broken_links(tmp_path) == [
        "README.md: docs/b.md",
        "README.md: docs/figures/x.png",
        "README.md: docs/a.md#nowhere (no such heading)",
    ]


def test_a_mock_run_is_summarised_as_the_pages_quote_it():
    epochs = [
        {"epoch": e, "loss": loss, "test_loss": test, "learning_rate": 0.001, "seconds": s}
        for e, (loss, test, s) in enumerate(
            [(0.5, 0.30, 9.0), (0.2, 0.10, 1.0), (0.1, 0.12, 3.0), (0.05, 0.15, 2.0)], 1
        )
    ]
    run = {
        "hparams": {"lr": 0.001}, "learning_rate": 0.001, "test_accuracy": 0.97,
        "test_binary_accuracy": 0.99, "test_loss": 0.15, "run": "lr_0.001-seed_0",
        "diverged": False, "epochs": epochs,
    }  # fmt: skip
    summary = docs.summarise_run(run)
    assert summary["min_test_loss"] == 0.10 and summary["min_test_loss_epoch"] == 2
    assert summary["test_loss_rise"] == pytest.approx(0.05)
    assert summary["loss_gap"] == pytest.approx(0.10)
    assert summary["first_epoch_loss"] == 0.5 and summary["train_loss"] == 0.05
    assert summary["epoch_seconds"] == 2.0  # the median after the first (compiling) epoch
    diverged = docs.summarise_run(run | {"diverged": True, "test_accuracy": None})
    assert diverged["diverged"] and diverged["test_accuracy"] is None


def test_the_tutorial_walks_the_lessons_in_order_each_with_a_figure():
    sections = (docs.DOCS / "tutorial.md").read_text().split("\n## ")[1:]
    lessons = [s for s in sections if s[0].isdigit()]
    titles = [s.splitlines()[0] for s in lessons]
    order = ["Softmax", "Activation", "sigmoid", "ReLU", "learning rate", "Dropout", "TensorBoard"]
    assert len(titles) == len(order)
    assert all(word in title for word, title in zip(order, titles, strict=True)), titles
    assert all("](figures/" in lesson for lesson in lessons)
