"""The command line, run for real: results for good input, one line and exit 2 for bad input."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from percept.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, message):
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("percept: error: ")
    assert message in err
    assert "Traceback" not in err


def test_stylize_one_image(capsys, tmp_path, tiny_model, photo_path):
    out = tmp_path / "o.png"
    code, stdout, err = run(capsys, "stylize", str(photo_path), "--model", str(tiny_model), "-o", str(out),
                            "--size", "64")
    assert code == 0, err
    img = Image.open(out)
    assert img.size == (64, 43)


def test_stylize_several_into_a_folder_with_options(capsys, tmp_path, tiny_model, awkward_images):
    srcs = [str(awkward_images[k]) for k in ("cmyk", "grey", "palette", "rgba", "16bit", "exif")]
    code, _, err = run(capsys, "stylize", *srcs, "--model", str(tiny_model), "-o", str(tmp_path / "res"),
                       "--strength", "0.5", "--preserve-color")
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "res").iterdir())
    assert names == sorted(f"{k}.png" for k in ("cmyk", "grey", "palette", "rgba", "16bit", "exif"))
    assert Image.open(tmp_path / "res" / "exif.png").size == (43, 64)


def test_strength_zero_returns_the_photo(capsys, tmp_path, tiny_model, photo_path):
    out = tmp_path / "same.png"
    assert run(capsys, "stylize", str(photo_path), "--model", str(tiny_model), "-o", str(out), "--size", "48",
               "--strength", "0")[0] == 0
    from percept.images import load_image, resize_long_side

    ref = np.asarray(resize_long_side(load_image(photo_path), 48))
    assert np.array_equal(np.asarray(Image.open(out)), ref)


@pytest.mark.parametrize("case,message", [
    ("missing", "no such file"),
    ("empty", "the file is empty"),
    ("text", "not an image file"),
    ("truncated", "cannot decode image"),
    ("tiny", "image is too small"),
])
def test_bad_images_fail_cleanly(capsys, tmp_path, tiny_model, photo_path, case, message):
    bad = tmp_path / "bad.jpg"
    if case == "empty":
        bad.write_bytes(b"")
    elif case == "text":
        bad.write_text("not really a jpeg\n")
    elif case == "truncated":
        bad.write_bytes(photo_path.read_bytes()[:2000])
    elif case == "tiny":
        Image.new("RGB", (8, 8)).save(bad, format="JPEG")
    out = tmp_path / "out.png"
    code, _, err = run(capsys, "stylize", str(bad), "--model", str(tiny_model), "-o", str(out))
    assert_one_line_error(code, err, message)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unknown_model_name_lists_shipped_ones(capsys, tmp_path, photo_path):
    code, _, err = run(capsys, "stylize", str(photo_path), "--model", "van_gogh_please", "-o",
                       str(tmp_path / "o.png"))
    assert_one_line_error(code, err, "unknown model 'van_gogh_please'; models: ")


def test_corrupt_checkpoint(capsys, tmp_path, tiny_model, photo_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(tiny_model.read_bytes()[:5000])
    code, _, err = run(capsys, "stylize", str(photo_path), "--model", str(bad), "-o", str(tmp_path / "o.png"))
    assert_one_line_error(code, err, "not a readable percept checkpoint")
    assert not (tmp_path / "o.png").exists()


def test_foreign_checkpoint_is_refused(capsys, tmp_path, photo_path):
    import torch

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    code, _, err = run(capsys, "stylize", str(photo_path), "--model", str(foreign), "-o", str(tmp_path / "o.png"))
    assert_one_line_error(code, err, "not a percept checkpoint")


def test_bad_output_extension_fails_before_work(capsys, tmp_path, tiny_model, photo_path):
    code, _, err = run(capsys, "stylize", str(photo_path), "--model", str(tiny_model), "-o", str(tmp_path / "o.txt"))
    assert_one_line_error(code, err, "unknown image extension '.txt'")


def test_argument_errors_are_one_line(capsys, photo_path):
    with pytest.raises(SystemExit) as exc:
        main(["stylize", str(photo_path), "--model", "x", "-o", "o.png", "--strength", "2"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be between 0 and 1" in err


@pytest.mark.parametrize("value,message", [("-1", "must be 0 or more, got -1"), ("two", "expected a whole number, got 'two'")])
def test_workers_must_be_a_count(capsys, value, message):
    with pytest.raises(SystemExit) as exc:
        main(["train-style", "--style", "s.jpg", "--data", "d", "--out", "o", "--workers", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_console_script_end_to_end(tmp_path, tiny_model, photo_path):
    """The installed `percept` entry point, in a real subprocess."""
    exe = [sys.executable, "-m", "percept.cli"]
    ok = subprocess.run(exe + ["stylize", str(photo_path), "--model", str(tiny_model), "-o",
                               str(tmp_path / "a.jpg"), "--size", "40"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert Image.open(tmp_path / "a.jpg").size == (40, 27)
    bad = subprocess.run(exe + ["stylize", str(tmp_path / "nope.png"), "--model", str(tiny_model), "-o",
                                str(tmp_path / "b.png")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().endswith("no such file") and "Traceback" not in bad.stderr


def test_train_style_cli_errors(capsys, tmp_path, painting_path):
    code, _, err = run(capsys, "train-style", "--style", str(painting_path), "--data", str(tmp_path / "none"),
                       "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "no such folder")
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "train-style", "--style", str(painting_path), "--data", str(tmp_path / "empty"),
                       "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "no images found")
    code, _, err = run(capsys, "train-style", "--style", str(painting_path), "--data", str(tmp_path / "empty"),
                       "--out", str(tmp_path / "o"), "--device", "tpu")
    assert code == 2


def test_resume_without_state(capsys, tmp_path, small_data, painting_path):
    code, _, err = run(capsys, "train-style", "--style", str(painting_path), "--data", str(small_data),
                       "--out", str(tmp_path / "o"), "--resume", "--quiet")
    assert_one_line_error(code, err, "--resume: no training state at")


def test_a_library_error_names_the_argument_and_the_command_line_its_flag(capsys, tmp_path):
    """The stylizer's checks live in the library and name the API's argument (`style_blend`); the command line
    prints the flag that sets it (--style-blend). A backquoted word that is no option (a command) stays."""
    from percept.errors import PerceptError, for_command_line
    from percept.inference.stylizer import open_stylizer

    with pytest.raises(PerceptError) as exc:
        open_stylizer("wave", method="wct")
    assert str(exc.value) == ("`method`, `style_blend`, `levels`, `decoder` and `color_match` are for `style` PAINTING "
                              "(arbitrary style transfer)")
    assert for_command_line("`style_blend` has 1 weight; see `percept models` or `percept`",
                            {"style_blend": "--style-blend"}) == \
        "`--style-blend` has 1 weight; see `percept models` or `percept`".replace("`--style-blend`", "--style-blend")
    assert main(["stylize", str(tmp_path / "x.jpg"), "--model", "wave", "--method", "wct", "-o", str(tmp_path / "o.png")]) == 2
    assert capsys.readouterr().err == ("percept: error: --method, --style-blend, --levels, --decoder and --color-match "
                                       "are for --style PAINTING (arbitrary style transfer)\n")
