"""Feature-space views (neighbours, t-SNE, top patches, receptive fields), the inversion grid and the
HTML gallery (percept.visualize.embed / gallery / cli_embedding), on real photos."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch import nn

from percept.cli import main
from percept.errors import PerceptError
from percept.models.vgg import LossNetwork
from percept.visualize import embed as E
from percept.visualize import gallery as G

SIZE = 64


# ----------------------------------------------------------------------------------- receptive fields

@pytest.mark.parametrize("layer,size,stride,start", [
    ("conv1_1", 3, 1, 0.5), ("relu1_1", 3, 1, 0.5), ("relu1_2", 5, 1, 0.5), ("pool1", 6, 2, 1.0),
    ("relu2_1", 10, 2, 1.0), ("relu2_2", 14, 2, 1.0), ("pool2", 16, 4, 2.0), ("relu3_1", 24, 4, 2.0),
    ("relu3_4", 48, 4, 2.0), ("pool3", 52, 8, 4.0), ("relu4_1", 68, 8, 4.0), ("pool4", 124, 16, 8.0),
    ("relu5_1", 156, 16, 8.0), ("relu5_4", 252, 16, 8.0), ("pool5", 268, 32, 16.0)])
def test_receptive_field_known_values(layer, size, stride, start):
    # by hand: each 3x3 conv adds 2 * jump, each 2x2 pool adds jump and doubles it
    # (1 +2 +2 = 5, +1 = 6 | +4 +4 = 14, +2 = 16 | +8 = 24 ... 48, +4 = 52 | +16 = 68 ... 116, +8 = 124 |
    #  +32 = 156 ... 252, +16 = 268)
    rf = E.receptive_field(layer)
    assert (rf.size, rf.stride, rf.start) == (size, stride, start)


def test_receptive_field_unknown_layer():
    with pytest.raises(PerceptError, match="unknown layer 'relu9_1'; valid layers: conv1_1"):
        E.receptive_field("relu9_1")


@pytest.mark.parametrize("layer,unit", [("conv2_2", (9, 7)), ("conv3_1", (6, 5))])
def test_receptive_field_is_where_the_gradient_reaches(layer, unit):
    """The input pixels a unit depends on, found by backprop through a linearised VGG (ReLUs removed,
    average pooling, so no gradient is zeroed on the way), are exactly the computed box."""
    net = LossNetwork(layer, pooling="avg")
    for name in net.names:
        if name.startswith("relu"):
            setattr(net, name, nn.Identity())
    x = torch.rand(1, 3, 48, 48, dtype=torch.float64, requires_grad=True)
    net = net.double()
    f = net(x, [layer])[layer]
    f[0, 3, unit[0], unit[1]].backward()
    rows = torch.nonzero(x.grad.abs().sum((0, 1)).sum(1)).flatten()
    cols = torch.nonzero(x.grad.abs().sum((0, 1)).sum(0)).flatten()
    top, left, bottom, right = E.receptive_field(layer).box(*unit)
    assert (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1) == (top, bottom, left, right)


# ----------------------------------------------------------------------------------- embed

# copied mirrored for the CNN-code test: far from symmetric (a flag on the left, the shuttle on the right),
# so its mirror image is a different picture pixel by pixel
MIRRORED = "astronaut"


@pytest.fixture(scope="module")
def folder_images(small_data):
    """The six shrunk photos plus a mirrored, brightened copy of MIRRORED (named ``mirror``)."""
    from percept.images import load_image
    from percept.training.data import list_images

    files = list_images(small_data)
    imgs = [load_image(f) for f in files]
    names = [f.stem for f in files]
    mirror = ImageOps.mirror(imgs[names.index(MIRRORED)]).point(lambda v: min(255, int(v * 1.1) + 8))
    return names + ["mirror"], imgs + [mirror]


@pytest.fixture(scope="module")
def embedded(folder_images):
    names, imgs = folder_images
    return E.embed_images(imgs, names=names, layer="relu4_1", k=3, queries=3, size=SIZE, canvas=300, top=8,
                          device="cpu")


def test_neighbours_start_with_the_image_itself(embedded):
    n = len(embedded.names)
    assert embedded.feature_neighbours.shape == (n, 4)
    assert embedded.feature_neighbours[:, 0].tolist() == list(range(n))
    assert embedded.pixel_neighbours[:, 0].tolist() == list(range(n))
    assert embedded.codes.shape == (n, 512)


def test_cnn_codes_see_through_a_mirror(embedded):
    """A mirrored, brightened copy is the photo's nearest neighbour by CNN code, but not by pixels
    (Krizhevsky et al. 2012, Sec. 6.1)."""
    mirror, original = len(embedded.names) - 1, embedded.names.index(MIRRORED)
    assert embedded.feature_neighbours[mirror, 1] == original
    assert embedded.feature_neighbours[original, 1] == mirror
    assert embedded.pixel_neighbours[mirror, 1] != original


def test_nearest_neighbours_with_duplicates_still_put_the_query_first():
    codes = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    nn_idx = E.nearest_neighbours(codes, 2)
    assert nn_idx[:, 0].tolist() == [0, 1, 2]
    assert nn_idx[0, 1] == 1 and nn_idx[1, 1] == 0


def test_tsne_canvas_has_its_size_and_is_not_blank(embedded):
    assert embedded.tsne.size == (300, 300)
    colours = embedded.tsne.getcolors(maxcolors=300 * 300)
    assert len(colours) > 1000
    white = sum(c for c, rgb in colours if rgb == (255, 255, 255))
    assert white < 0.9 * 300 * 300
    assert embedded.positions.shape == (len(embedded.names), 2) and np.isfinite(embedded.positions).all()


def test_tsne_clamps_perplexity_for_a_few_images():
    codes = np.random.default_rng(0).random((5, 16))
    xy = E.tsne_embedding(codes, perplexity=30)
    assert xy.shape == (5, 2) and np.isfinite(xy).all()
    assert E.tsne_embedding(codes[:1]).shape == (1, 2)


def test_neighbour_grid_layout(embedded):
    # 3 query rows of query | 3 by pixels | 3 by code, 96-px tiles
    w, h = embedded.neighbours.size
    assert w > 7 * 96 and h > 3 * 96


def test_top_patches_are_sorted_and_are_what_the_channel_saw(embedded, folder_images):
    ps = embedded.patches
    acts = [p.activation for p in ps]
    assert len(ps) == 8
    assert acts == sorted(acts, reverse=True) and acts[0] > 0
    rf = E.receptive_field("relu4_1")
    assert all(p.image.size == (rf.size, rf.size) for p in ps)
    # each activation is the real feature value at the patch's position
    net = LossNetwork("relu4_1")
    for p in ps[:3]:
        x = torch.from_numpy(np.asarray(embedded.images[p.index], np.float32).transpose(2, 0, 1) / 255)[None]
        with torch.no_grad():
            f = net(x, ["relu4_1"])["relu4_1"][0, embedded.channel]
        assert float(f[p.row, p.col]) == pytest.approx(p.activation, rel=1e-4)
        assert float(f[p.row, p.col]) >= float(f.max()) * (1 - 1e-5) or p is not ps[0]
        # the crop holds the image's pixels where the box is inside the image
        top, left, bottom, right = p.box
        t, lft = max(0, top), max(0, left)
        inside = np.asarray(embedded.images[p.index])[t:min(SIZE, bottom), lft:min(SIZE, right)]
        crop = np.asarray(p.image)[t - top:t - top + inside.shape[0], lft - left:lft - left + inside.shape[1]]
        assert np.array_equal(crop, inside)


def test_default_channel_is_the_most_variable_code(embedded):
    assert embedded.channel == int(np.argmax(embedded.codes.std(0)))


def test_channel_choice_and_errors(folder_images):
    names, imgs = folder_images
    res = E.embed_images(imgs[:3], names=names[:3], layer="relu2_1:7", k=1, size=SIZE, canvas=200, top=4,
                         device="cpu")
    assert res.channel == 7 and res.patch_sheet.width > 0
    with pytest.raises(PerceptError, match=r"relu2_1 has channels 0..127, got 128"):
        E.embed_images(imgs[:2], layer="relu2_1", channel=128, size=SIZE, device="cpu")
    with pytest.raises(PerceptError, match=r"unknown layer 'relu2_9'"):
        E.embed_images(imgs[:2], layer="relu2_9", size=SIZE, device="cpu")


def test_cli_embed_writes_three_pictures(small_data, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["viz", "embed", str(small_data), "--layer", "relu3_1", "--channel", "5", "--size", "64", "-k", "2",
               "--canvas", "256", "-o", str(out), "--device", "cpu", "--quiet"])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["neighbours.png", "patches_relu3_1_5.png", "tsne.png"]
    assert Image.open(out / "tsne.png").size == (256, 256)
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--layer", "relu5_1"], "no images found"),
    (["--layer", "relu7_1"], "unknown layer 'relu7_1'; valid layers:"),
    (["--layer", "relu5_1", "--channel", "600"], "relu5_1 has channels 0..511, got 600"),
])
def test_cli_embed_errors_are_one_line(tmp_path, capsys, args, message, small_data):
    empty = tmp_path / "empty"
    empty.mkdir()
    folder = empty if message == "no images found" else small_data
    rc = main(["viz", "embed", str(folder), *args, "-o", str(tmp_path / "o"), "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cli_embed_missing_folder(tmp_path, capsys):
    rc = main(["viz", "embed", str(tmp_path / "nope"), "-o", str(tmp_path / "o"), "--quiet"])
    assert rc == 2 and "no such folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- invert-grid

def test_invert_grid_uses_decoders_where_shipped(photo_path):
    assert E.has_shipped_decoder("relu2_1") and not E.has_shipped_decoder("relu2_2")
    sheet, cells = E.invert_grid(photo_path, "relu2_1,relu2_2", size=48, iterations=3, fine_iterations=0,
                                 device="cpu")
    assert [(c.layer, c.method) for c in cells] == [("relu2_1", "decoder"), ("relu2_2", "optimize")]
    dec, opt = cells
    assert dec.image.size == opt.image.size == (48, 32)  # motorcycle.jpg is landscape ~3:2, cropped to stride 2
    assert dec.image_error < 0.5 < opt.image_error       # a real decoder vs three steps from noise
    assert sheet.width >= 3 * 48 and sheet.height > 32


def test_invert_grid_methods(photo_path):
    _, cells = E.invert_grid(photo_path, ["relu2_1"], method="optimize", size=32, iterations=2,
                             fine_iterations=0, device="cpu")
    assert cells[0].method == "optimize"
    with pytest.raises(PerceptError, match="no shipped decoder for relu2_2"):
        E.invert_grid(photo_path, ["relu2_2"], method="decoder", size=32, device="cpu")
    with pytest.raises(PerceptError, match="unknown layer 'relu2_7'"):
        E.invert_grid(photo_path, "relu2_1,relu2_7", size=32, device="cpu")


def test_cli_invert_grid(photo_path, tmp_path, capsys):
    rc = main(["viz", "invert-grid", str(photo_path), "--layers", "relu3_1,relu4_1", "--size", "48",
               "-o", str(tmp_path), "--device", "cpu", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and (tmp_path / f"{photo_path.stem}_invert_grid.png").is_file()
    assert "relu3_1: decoder, image-space error" in out and "relu4_1: decoder" in out


# ----------------------------------------------------------------------------------- gallery

def _module_exists(key: str) -> bool:
    module = {"dream": "dream", "texture": "texture", "classviz": "classviz", "fool": "classviz"}.get(key)
    return module is None or importlib.util.find_spec(f"percept.visualize.{module}") is not None


@pytest.fixture(scope="module")
def gallery(photo_path, small_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("gallery")
    report = G.build_gallery(photo_path, out, fast=True, folder=small_data, device="cpu")
    return report


def test_gallery_has_every_section(gallery):
    assert [s.key for s in gallery.sections] == list(G.SECTION_KEYS)
    for s in gallery.sections:
        assert not s.details, f"{s.key} crashed:\n{s.details}"      # a bug, not a user error
        if _module_exists(s.key):
            assert not s.error, f"{s.key}: {s.error}"
            assert s.figures, s.key
        else:
            assert "not available" in s.error
        assert s.citation and re.search(r"(19|20)\d\d", s.citation)


def test_gallery_page_is_self_contained(gallery):
    page = gallery.path.read_text()
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(srcs) == gallery.images > 10
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "data-images-loaded" in page and "window.addEventListener('load'" in page
    assert list(gallery.path.parent.iterdir()) == [gallery.path]


def test_a_failing_section_shows_its_error():
    spec = G.SectionSpec("boom", "Boom", "Nobody 2024", "breaks", lambda ctx: [1 / 0])
    sec = G.render_section(spec, None)
    assert sec.error == "ZeroDivisionError: division by zero" and "Traceback" in sec.details
    page = G.render_html(Image.new("RGB", (8, 8), (10, 20, 30)), "x", [sec], "sub")
    assert "This section failed:" in page and "ZeroDivisionError: division by zero" in page


def _chromium() -> str | None:
    from percept.inference.browser import find_chromium

    return find_chromium()


def _run_chromium(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_gallery_renders_in_headless_chromium(gallery, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium); the page was checked without a browser")
    url = gallery.path.resolve().as_uri()
    shot = tmp_path / "gallery.png"
    r = _run_chromium(exe, tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", url)
    assert shot.is_file(), r.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 3000)
    assert len(img.getcolors(maxcolors=1200 * 3000)) > 2000    # photos and heatmaps, not a blank page
    dom = _run_chromium(exe, tmp_path, "--dump-dom", url).stdout
    m = re.search(r'<body[^>]*data-images-loaded="(\d+)"[^>]*data-images-total="(\d+)"', dom)
    assert m, dom[:500]
    loaded, total = int(m.group(1)), int(m.group(2))
    assert loaded == total == gallery.images > 0


def test_cli_gallery_with_a_classifier(photo_path, tmp_path, capsys):
    """With a classifier the attributions explain its top class and the class sections draw."""
    from percept.visualize.attribution import SmallCNN, save_classifier

    torch.manual_seed(0)
    labels = ["red square", "green disc", "blue stripes", "yellow cross"]
    clf = save_classifier(SmallCNN(4, (8, 16)).eval(), tmp_path / "clf.pt", labels=labels, input_size=32)
    out = tmp_path / "g"
    rc = main(["viz", "gallery", str(photo_path), "--fast", "--classifier", str(clf), "--only",
               "saliency,classviz,fool", "-o", str(out), "--device", "cpu", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert "3 sections" in capsys.readouterr().out
    page = (out / "index.html").read_text()
    assert "This section failed" not in page and "These sections need a classifier" not in page
    assert "classifier clf" in page
    assert sum(page.count(name) for name in labels) >= 3
    assert page.count("<img ") == 1 + 2 + 3 + 3    # photo, saliency, three class models, fool's three


def test_gallery_without_a_classifier_says_how_to_get_one(photo_path, small_data, tmp_path):
    report = G.build_gallery(photo_path, tmp_path, fast=True, folder=small_data, device="cpu", classifier=None,
                             sections=["classviz", "fool", "saliency"])
    by_key = {s.key: s for s in report.sections}
    for key in ("classviz", "fool"):
        assert "--classifier" in by_key[key].note and not by_key[key].figures
    assert by_key["saliency"].figures and "relu" in by_key["saliency"].figures[0].caption  # a VGG19 channel


def test_gallery_uses_the_imagenet_classifier(gallery):
    page = gallery.path.read_text()
    by_key = {s.key: s for s in gallery.sections}
    assert by_key["classviz"].figures and by_key["fool"].figures
    from percept.models.efficientnet import imagenet_labels

    names = imagenet_labels()
    captions = " ".join(f.caption for f in by_key["classviz"].figures)
    assert sum(name in captions for name in names) >= 3        # three ImageNet classes by name
    assert "efficientnet" in page.lower() or any(name in page for name in names)


def test_cli_gallery_errors(photo_path, tmp_path, capsys):
    rc = main(["viz", "gallery", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "g"), "--fast", "--quiet"])
    assert rc == 2 and "no such file" in capsys.readouterr().err
    rc = main(["viz", "gallery", str(photo_path), "-o", str(tmp_path / "g"), "--classifier", "none", "--weights",
               "x.pth", "--quiet"])
    assert rc == 2 and "--weights needs --classifier" in capsys.readouterr().err
    rc = main(["viz", "gallery", str(photo_path), "-o", str(tmp_path / "g"), "--only", "embed,colour", "--quiet"])
    assert rc == 2 and "unknown section(s) colour; known: filters" in capsys.readouterr().err
