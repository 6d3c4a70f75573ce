"""Image I/O: every awkward format becomes 8-bit RGB the right way up; bad files get one clear error."""

import numpy as np
import pytest
from PIL import Image

from percept.errors import PerceptError
from percept.images import blend, load_image, preserve_color, save_image, to_image, to_tensor


@pytest.mark.parametrize("kind", ["cmyk", "grey", "palette", "rgba", "16bit"])
def test_awkward_modes_become_rgb(awkward_images, kind):
    img = load_image(awkward_images[kind])
    assert img.mode == "RGB" and img.size == (64, 43)
    arr = np.asarray(img)
    assert arr.std() > 10  # a picture, not a flat square


def test_16bit_is_scaled_not_clipped(awkward_images):
    grey = np.asarray(load_image(awkward_images["grey"]))[..., 0].astype(int)
    deep = np.asarray(load_image(awkward_images["16bit"]))[..., 0].astype(int)
    assert np.abs(grey - deep).max() <= 1


def test_rgba_is_composited_over_white(tmp_path):
    Image.new("RGBA", (20, 20), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert np.asarray(load_image(tmp_path / "clear.png")).min() == 255


def test_exif_orientation_is_applied(awkward_images):
    assert load_image(awkward_images["exif"]).size == (43, 64)


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b""), "the file is empty"),
    (lambda p: p.write_text("hello, I am text"), "not an image file"),
])
def test_bad_files(tmp_path, make, message):
    p = tmp_path / "bad.jpg"
    make(p)
    with pytest.raises(PerceptError, match=message):
        load_image(p)


def test_truncated_jpeg(tmp_path, photo_path):
    data = photo_path.read_bytes()
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(PerceptError, match="cannot decode image"):
        load_image(p)


def test_too_small(tmp_path):
    Image.new("RGB", (15, 40)).save(tmp_path / "s.png")
    with pytest.raises(PerceptError, match=r"image is too small \(15x40\); both sides need at least 16 px"):
        load_image(tmp_path / "s.png")


def test_tensor_round_trip_and_atomic_save(tmp_path, photo_path):
    img = load_image(photo_path)
    t = to_tensor(img)
    assert t.shape == (1, 3, img.height, img.width) and 0 <= t.min() and t.max() <= 1
    assert np.array_equal(np.asarray(to_image(t)), np.asarray(img))
    out = save_image(img, tmp_path / "sub" / "x.png")
    assert out.is_file() and [p.name for p in out.parent.iterdir()] == ["x.png"]
    with pytest.raises(PerceptError, match="unknown image extension"):
        save_image(img, tmp_path / "x.xyz")


def test_preserve_color_keeps_chroma_and_strength_blends(photo_path):
    photo = load_image(photo_path).resize((64, 48))
    blue = Image.new("RGB", photo.size, (20, 40, 200))
    kept = preserve_color(blue, photo)
    cb_photo = np.asarray(photo.convert("YCbCr"))[..., 1:].astype(int)
    cb_kept = np.asarray(kept.convert("YCbCr"))[..., 1:].astype(int)
    assert np.abs(cb_photo - cb_kept).mean() < 3
    assert np.array_equal(np.asarray(blend(blue, photo, 0.0)), np.asarray(photo))
    assert np.array_equal(np.asarray(blend(blue, photo, 1.0)), np.asarray(blue))
    with pytest.raises(PerceptError, match="strength must be between 0 and 1"):
        blend(blue, photo, 1.5)
