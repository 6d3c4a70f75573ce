"""The Mahendran & Vedaldi feature-inversion baseline (percept.visualize.inversion) on a real photo."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from percept.errors import PerceptError
from percept.images import to_tensor
from percept.models.vgg import LossNetwork
from percept.visualize.inversion import (
    MV_DEFAULTS,
    InversionResult,
    feature_space_error,
    image_space_error,
    invert_optimize,
    resolve_settings,
)

SIZE = 64


@pytest.fixture(scope="module")
def net() -> LossNetwork:
    return LossNetwork("relu2_1")


@pytest.fixture(scope="module")
def photo(photo_path) -> torch.Tensor:
    """A 64x64 crop of a real photo (shrunk first, so it keeps a whole scene)."""
    img = Image.open(photo_path).convert("RGB")
    img.thumbnail((96, 96))
    w, h = img.size
    left, top = (w - SIZE) // 2, (h - SIZE) // 2
    return to_tensor(img.crop((left, top, left + SIZE, top + SIZE)))


@pytest.fixture(scope="module")
def result(photo, net) -> InversionResult:
    """The default inversion at relu2_1 (300 jittered + 50 fine steps; a couple of seconds)."""
    return invert_optimize(photo, "relu2_1", net=net, progress=False)


def test_objective_falls(result):
    h = result.history
    assert len(h) == MV_DEFAULTS["iterations"] + MV_DEFAULTS["fine_iterations"]
    assert all(v == v for v in h)
    assert h[-1] < 0.3 * h[0]
    assert min(h[-20:]) < min(h[:20])


def test_relu2_1_reconstruction_is_close_to_the_photo(result, photo, net):
    start = invert_optimize(photo, "relu2_1", net=net, progress=False, iterations=0, fine_iterations=0)
    grey = torch.full_like(photo, 0.5)
    err = image_space_error(result.tensor, photo)
    assert err < 0.6 * image_space_error(start.tensor, photo)
    assert err < 0.6 * image_space_error(grey, photo)
    assert err < 0.6
    assert result.feature_error < 0.3
    assert start.feature_error > 3 * result.feature_error
    # the reported error is the plain (unjittered) feature error of the returned image
    assert result.feature_error == pytest.approx(feature_space_error(net, result.tensor, photo, "relu2_1"), rel=1e-4)


def test_output_shape_range_and_image(photo, net):
    x = photo[:, :, :48, :]
    r = invert_optimize(x, "relu2_1", net=net, progress=False, iterations=5, fine_iterations=2)
    assert r.tensor.shape == (1, 3, 48, SIZE)
    assert r.tensor.dtype == torch.float32 and r.tensor.device.type == "cpu"
    assert float(r.tensor.min()) >= 0.0 and float(r.tensor.max()) <= 1.0
    assert r.image.mode == "RGB" and r.image.size == (SIZE, 48)
    assert torch.equal(to_tensor(r.image), r.tensor)
    assert r.seconds > 0 and len(r.history) == 7


def test_pil_target_and_features_with_size(photo, net):
    img = Image.fromarray((photo[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
    a = invert_optimize(img, "relu2_1", net=net, progress=False, iterations=4, fine_iterations=0)
    with torch.no_grad():
        phi = net(to_tensor(img), ["relu2_1"])["relu2_1"]
    b = invert_optimize((SIZE, SIZE), "relu2_1", features=phi, net=net, progress=False, iterations=4,
                        fine_iterations=0)
    assert torch.equal(a.tensor, b.tensor)
    with pytest.raises(PerceptError, match="features"):
        invert_optimize((SIZE, SIZE), "relu2_1", net=net, progress=False)


def test_deterministic_for_a_fixed_seed(photo, net):
    kw = dict(net=net, progress=False, iterations=6, fine_iterations=2, jitter=3)
    a = invert_optimize(photo, "relu2_1", seed=3, **kw)
    b = invert_optimize(photo, "relu2_1", seed=3, **kw)
    c = invert_optimize(photo, "relu2_1", seed=4, **kw)
    assert torch.equal(a.tensor, b.tensor) and a.history == b.history
    assert not torch.equal(a.tensor, c.tensor)


def test_unknown_layer_lists_valid_layers(photo):
    with pytest.raises(PerceptError, match="valid layers") as info:
        invert_optimize(photo, "relu9_9", progress=False)
    assert "relu2_1" in str(info.value) and "pool5" in str(info.value)
    with pytest.raises(PerceptError, match="valid layers"):
        feature_space_error(LossNetwork("relu1_1"), photo, photo, "conv0")


def test_settings_follow_the_papers_and_overrides_apply():
    s = resolve_settings("relu5_1")
    assert (s["alpha"], s["beta"], s["B"]) == (6.0, 2.0, 80.0)
    assert s["V"] == pytest.approx(80 / 6.5)
    assert s["lr"] == pytest.approx(0.05 * 80 ** 2 / 6)
    # jitter: max(1, round(stride / 4)) as in the authors' code
    assert [resolve_settings(l)["jitter"] for l in ("relu2_1", "relu3_1", "relu4_1", "relu5_1", "pool5")] == [1, 1, 2, 4, 8]
    assert resolve_settings("relu2_1")["C"] >= resolve_settings("relu5_1")["C"]
    assert resolve_settings("relu3_1", C=7, jitter=2)["C"] == 7 and resolve_settings("relu3_1", jitter=2)["jitter"] == 2
    with pytest.raises(PerceptError, match="unknown inversion setting"):
        resolve_settings("relu3_1", colour=1)
    with pytest.raises(PerceptError, match="optimizer"):
        resolve_settings("relu3_1", optimizer="sgd")


def test_error_measures(photo):
    assert image_space_error(photo, photo) == 0.0
    flat = torch.full_like(photo, float(photo.mean()))
    assert image_space_error(flat, photo) == pytest.approx(1.0, rel=1e-5)
    assert image_space_error(torch.cat([photo, flat]), torch.cat([photo, photo])) == pytest.approx(0.5, rel=1e-5)
