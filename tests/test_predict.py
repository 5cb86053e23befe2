"""`python -m mnist_jax.predict`: a model trained on the real MNIST (200 steps, two seeds) finds
the digit of a PNG the test writes in either polarity, of a JPEG of another size and of a `.npy`
array; `--ensemble` averages the members; missing or unreadable images are named in one line.
"""

import json

import numpy as np
import pytest
from PIL import Image
from trained_runs import mnist_checkpoint

import mnist_jax
from mnist_jax import datasets, predict


@pytest.fixture(scope="module")
def digits(mnist_data_dir):
    """(checkpoint dir, [(image 28x28 uint8, label)]): three test digits both members classify
    correctly, MNIST's light ink on dark."""
    ckpt, _, data_dir = mnist_checkpoint(mnist_data_dir)
    images, labels = datasets.load("mnist", "test", data_dir=data_dir)
    trained = mnist_jax.load(ckpt)
    right = np.all([m.predict(images[:200]).argmax(-1) == labels[:200] for m in trained.members], 0)
    chosen = [i for i in np.flatnonzero(right) if labels[i] in (2, 7, 4)]
    picked = {int(labels[i]): i for i in reversed(chosen)}  # one of each label
    return ckpt, [(images[i, ..., 0], label) for label, i in sorted(picked.items())]


def top_class(line: str) -> str:
    return line.split(": ", 1)[1].split(" ", 1)[0]


def test_a_png_is_found_in_both_polarities(digits, tmp_path, capsys):
    ckpt, [(image, label), *_] = digits
    Image.fromarray(255 - image).save(tmp_path / "paper.png")  # dark ink on white, as drawn
    Image.fromarray(image).save(tmp_path / "screen.png")
    predict.main([ckpt, str(tmp_path / "paper.png"), str(tmp_path / "screen.png")])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [top_class(line) for line in lines] == [str(label), str(label)]
    assert lines[0].startswith(f"{tmp_path / 'paper.png'}: {label} ")
    assert len(lines[0].split(", ")) == 3  # the three most probable
    assert f"{tmp_path / 'paper.png'}: dark ink on a light ground: inverted" in err
    assert "screen.png" not in err
    predict.main([ckpt, str(tmp_path / "paper.png"), "--invert", "no"])
    out, err = capsys.readouterr()
    assert "inverted" not in err  # taken as it is, asked so


def test_a_jpeg_of_another_size_and_an_npy_array(digits, tmp_path, capsys):
    ckpt, [_, (image, label), (other, other_label)] = digits
    big = Image.fromarray(255 - image).resize((84, 84), Image.Resampling.BICUBIC)
    big.convert("RGB").save(tmp_path / "photo.jpg", quality=90)
    np.save(tmp_path / "digit.npy", other)
    predict.main([ckpt, str(tmp_path / "photo.jpg"), str(tmp_path / "digit.npy")])
    lines = capsys.readouterr().out.splitlines()
    assert [top_class(line) for line in lines] == [str(label), str(other_label)]


def test_ensemble_is_the_members_mean_and_written_as_json(digits, tmp_path, capsys):
    ckpt, pairs = digits
    paths = []
    for i, (image, _) in enumerate(pairs):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    records = predict.main([ckpt, *paths, "--ensemble", "--json", str(tmp_path / "p.json")])
    members = mnist_jax.load(ckpt).members
    stack = np.stack([image[..., None] for image, _ in pairs])
    mean_NxK = np.mean([m.predict(stack) for m in members], 0)
    got = np.array([list(r["probabilities"].values()) for r in records])
    np.testing.assert_allclose(got, mean_NxK, rtol=1e-5, atol=1e-7)
    written = json.loads((tmp_path / "p.json").read_text())
    assert written["member"] == "ensemble" and len(written["images"]) == len(pairs)
    assert [r["top"][0]["class"] for r in written["images"]] == [str(lb) for _, lb in pairs]
    predict.main([ckpt, paths[0], "--member", "1"])
    one = capsys.readouterr().out.splitlines()[-1]
    p_1 = members[1].predict(stack[:1])[0]
    assert one == predict.line(paths[0], predict.top_classes(p_1, members[1].dataset.class_names))


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("missing.png", None, "missing.png: no such file"),
        ("broken.png", b"not an image", "broken.png: not a readable image"),
        ("broken.npy", b"not an array", "broken.npy: not a readable .npy array"),
    ],
)
def test_a_missing_or_unreadable_image_is_named_in_one_line(
    digits, tmp_path, capsys, name, content, expected
):
    ckpt, _ = digits
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(SystemExit) as info:
        predict.main([ckpt, str(tmp_path / name)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and expected in err


def test_polarity_is_read_from_the_border():
    ink_on_paper = np.full((28, 28, 1), 250, np.uint8)
    ink_on_paper[8:20, 12:16] = 10
    assert predict.light_ground(ink_on_paper)
    assert not predict.light_ground(255 - ink_on_paper)
