"""Image I/O: every awkward format becomes 8-bit RGB the right way up; bad files get one clear error."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from percept.errors import PerceptError
from percept.images import (
    DOWNSCALE_RULE,
    MIN_FRAME_SIDE,
    UPSCALE_RULE,
    blend,
    fit_long_side,
    load_image,
    preserve_color,
    resize_long_side,
    save_image,
    to_float,
    to_image,
    to_tensor,
    to_uint8,
    working_size,
)


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


# ------------------------------------------------------------------- the one long-side fit

SHAPES = [(w, h) for w in (1, 3, 7, 16, 31, 64, 99, 100, 333, 512, 640, 1001, 4000) for h in (1, 5, 17, 48, 432, 512, 3000)]


def test_fit_long_side_up_and_down():
    assert fit_long_side(640, 432, 320, upscale=True) == (320, 216)
    assert fit_long_side(640, 432, 320, upscale=False) == (320, 216)          # shrinking: both rules agree
    assert fit_long_side(64, 43, 128, upscale=True) == (128, 86)              # stylize --size enlarges
    assert fit_long_side(64, 43, 128, upscale=False) == (64, 43)              # video --size never does
    assert fit_long_side(64, 43, None, upscale=True) == (64, 43)
    assert fit_long_side(43, 64, 64, upscale=True) == (43, 64)                # already that long
    for w, h in SHAPES:
        for size in (16, 100, 512):
            fw, fh = fit_long_side(w, h, size, upscale=True)
            assert max(fw, fh) == size and (fw >= fh) == (w >= h)
            assert fit_long_side(w, h, size, upscale=False) == ((fw, fh) if max(w, h) > size else (w, h))
    assert "enlarged" in UPSCALE_RULE and "never enlarged" in DOWNSCALE_RULE


def test_fit_long_side_rounding_and_minimum():
    # round() to the nearest pixel, half to even: 5 * 100 / 200 = 2.5 -> 2, 7 * 100 / 200 = 3.5 -> 4
    assert fit_long_side(200, 5, 100) == (100, 2) and fit_long_side(200, 7, 100) == (100, 4)
    assert fit_long_side(200, 3, 100) == (100, 2)                             # 1.5 -> 2
    assert fit_long_side(4000, 1, 100) == (100, 1)                            # never below min_side (1)
    assert fit_long_side(4000, 10, 512, upscale=False, min_side=MIN_FRAME_SIDE) == (512, 8)


def _old_images_working_size(w, h, long_side):           # percept/images.py before the one fit
    if long_side is None:
        return w, h
    scale = long_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _old_video_working_size(w, h, size):                 # percept/inference/video.py working_size
    if not size or max(w, h) <= size:
        return w, h
    s = size / max(w, h)
    return max(8, round(w * s)), max(8, round(h * s))


def test_fit_long_side_matches_the_copies_it_replaces():
    """The fits it replaces (images.working_size / resize_long_side, upscaling; video's working size, the
    flow's shrink, the training crops' cap, the painting's cap: down only) give the same sizes."""
    for w, h in SHAPES:
        for size in (None, 16, 64, 100, 320, 512, 1001):
            assert working_size((w, h), size) == _old_images_working_size(w, h, size)
            assert fit_long_side(w, h, size, upscale=False, min_side=MIN_FRAME_SIDE) == _old_video_working_size(w, h, size)
            if size is not None:
                cap = (w, h) if max(w, h) <= size else _old_images_working_size(w, h, size)
                assert fit_long_side(w, h, size, upscale=False) == cap


def test_resize_long_side_same_pixels(photo_path):
    img = load_image(photo_path)                                             # 640x432
    assert resize_long_side(img, 640) is img and resize_long_side(img, None) is img
    assert resize_long_side(img, 1000, upscale=False) is img
    old = img.resize((320, 216), Image.Resampling.LANCZOS)                   # what it always did
    assert np.array_equal(np.asarray(resize_long_side(img, 320)), np.asarray(old))
    assert np.array_equal(np.asarray(resize_long_side(img, 320, upscale=False)), np.asarray(old))
    assert resize_long_side(img, 1280).size == (1280, 864)


# ------------------------------------------------------------------- uint8 <-> float

def test_uint8_float_round_trip():
    u = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)  # HxWx3, every value
    f = to_float(u)
    assert f.dtype == np.float32 and f.shape == u.shape and f.min() == 0 and f.max() == 1
    assert np.array_equal(to_uint8(f), u)
    assert np.array_equal(f, u.astype(np.float32) / 255.0)                  # the copies it replaces
    pil = Image.fromarray(u)
    assert np.array_equal(to_float(pil), f)
    # round half up, clipped
    edges = np.array([-1.0, 0.0, 0.49 / 255, 0.51 / 255, 1.49 / 255, 1.51 / 255, 254.5 / 255, 1.0, 2.0, np.inf], np.float64)
    assert to_uint8(edges).tolist() == [0, 0, 0, 1, 1, 2, 255, 255, 255, 255]


def test_to_uint8_same_pixels_as_the_copies_it_replaces():
    """Computed in the input's own precision, as each copy did: float32 network output (to_image, the
    engine, the viz tools) and float64 arrays (load_image cast to float64 first) give the same bytes."""
    import torch

    rng = np.random.default_rng(0)
    x32 = rng.uniform(-0.1, 1.1, (64, 64, 3)).astype(np.float32)
    x32.flat[:1000] = (np.arange(1000) % 256 + 0.5).astype(np.float32) / np.float32(255)   # near the .5 edges
    assert np.array_equal(to_uint8(x32), (np.clip(x32, 0, 1) * 255.0 + 0.5).astype(np.uint8))
    t = torch.from_numpy(x32.transpose(2, 0, 1).copy())
    old_to_image = (t.clamp(0, 1).numpy().transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8)
    assert np.array_equal(np.asarray(to_image(t)), old_to_image)
    x64 = x32.astype(np.float64)
    assert np.array_equal(np.asarray(load_image(x64)), (np.clip(x64, 0, 1) * 255 + 0.5).astype(np.uint8))


# ------------------------------------------------------------------- ImageNet normalisation, once

def test_imagenet_mean_and_std_are_declared_once():
    """One declaration (percept.models.vgg) that everything else imports: a second copy of the numbers
    anywhere in the package fails here."""
    import percept
    from percept.models import vgg
    from percept.visualize import common

    pkg = Path(percept.__file__).parent
    for number in ("0.485", "0.229"):
        where = [f"{p.relative_to(pkg).as_posix()}:{i}" for p in sorted(pkg.rglob("*.py"))
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if number in line]
        assert len(where) == 1 and where[0].startswith("models/vgg.py:"), f"{number} declared at {where}"
    assert common.IMAGENET_MEAN is vgg.IMAGENET_MEAN and common.IMAGENET_STD is vgg.IMAGENET_STD

