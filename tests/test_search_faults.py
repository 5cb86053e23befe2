"""A halving or PBT search whose checkpoint disk fills: the one epoch loop handles it as it
does a plain run's, so the command ends in one line with exit status 1, and the search's table
and JSON of what trained are written. On tfds mock data."""

import json

import pytest
from test_checkpoint import run

from mnist_jax import checkpoint, checkpoint_folder

SEARCH = ("val_split=40", "lr=loguniform(1e-4,1e-2)", "--samples", "4", "--epochs", "3")


@pytest.mark.parametrize("strategy", ["halving", "pbt"])
def test_a_search_whose_checkpoint_disk_fills_ends_in_one_line_with_its_table_and_json_mock_data(
    strategy, tmp_path, monkeypatch, capsys
):
    real_save = checkpoint.MemberCheckpoints.save

    def full_at_epoch_2(store, epoch, *args, **kwargs):
        if epoch == 2:
            raise checkpoint_folder.SaveError(
                f"the checkpoint of epoch {epoch} could not be written"
            )
        return real_save(store, epoch, *args, **kwargs)

    monkeypatch.setattr(checkpoint.MemberCheckpoints, "save", full_at_epoch_2)
    out_json = tmp_path / "out.json"
    flags = (*SEARCH, "--search", strategy, "--eta", "2", "--json", str(out_json))
    with pytest.raises(SystemExit) as exit_info:
        run("five_layer_relu", tmp_path, *flags)
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert "the checkpoint of epoch 2 could not be written" in captured.err
    assert f"{strategy} search, validation" in captured.out  # the table of what trained
    report = json.loads(out_json.read_text())
    assert max(len(r["epochs"]) for r in report["runs"]) == 2
    chosen = report["search"]["chosen"]
    assert report["runs"][chosen]["test_accuracy"] is not None  # chosen among what trained
    assert all(e["wall_seconds"] is not None for r in report["runs"] for e in r["epochs"])
