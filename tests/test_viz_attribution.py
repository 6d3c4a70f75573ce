"""Attribution, class model visualisation and fooling images, checked for what each one claims.

The class-based tools run on a small CNN trained here for real (tests/viz_support.py: coloured
shapes at random places, so where the evidence is - the object's box - is known); the channel-based
ones on the VGG19 loss network and a real photo. Nothing under test is mocked.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from viz_support import LABELS, box_mask, make_images, object_mask, train_classifier

from percept.cli import main
from percept.errors import PerceptError
from percept.images import load_image, resize_long_side, to_tensor
from percept.visualize import attribution as A
from percept.visualize.classviz import class_model, fooling_image
from percept.visualize.common import count_hooks


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Everything here is tiny: one thread is as fast, and does not stall when the box is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def trained():
    model, acc, seconds = train_classifier()
    return model, acc, seconds


@pytest.fixture(scope="session")
def clf(trained):
    return trained[0]


@pytest.fixture(scope="session")
def clf_file(tmp_path_factory, clf):
    return A.save_classifier(clf, tmp_path_factory.mktemp("clf") / "shapes.pt", labels=LABELS, input_size=32)


@pytest.fixture(scope="session")
def shapes():
    y = torch.arange(8) % 4
    x, boxes = make_images(y, generator=torch.Generator().manual_seed(123))
    return x, y, boxes


@pytest.fixture(scope="session")
def half_photo(photo_path):
    """The test photo at 64x64 with its left half grey: a channel can only fire on the right half."""
    x = to_tensor(load_image(photo_path).resize((64, 64), Image.LANCZOS))
    x[:, :, :, :32] = 0.5
    return x


def _in_out(m: torch.Tensor, inside: torch.Tensor) -> float:
    return float(m[inside].mean() / m[~inside].mean().clamp_min(1e-12))


def test_the_test_classifier_learnt_its_task(trained):
    _, acc, seconds = trained
    assert acc > 0.9, f"held-out accuracy {acc:.2f}"
    assert seconds < 30


def test_predict_top1_is_right(clf, shapes):
    x, y, _ = shapes
    for i in range(len(y)):
        preds = A.predict(clf, x[i:i + 1], k=5, labels=LABELS)
        assert len(preds) == 4  # k is capped by the number of classes
        assert preds[0].index == int(y[i]) and preds[0].label == LABELS[int(y[i])]
        probs = [p.probability for p in preds]
        assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-4
    assert count_hooks(clf) == 0


def test_predict_on_a_layer_lists_its_most_active_channels(half_photo):
    preds = A.predict(None, half_photo, k=3, target="relu2_1")
    with torch.no_grad():
        means = A.LayerScores("relu2_1")(half_photo)[0]
    assert [p.index for p in preds] == means.topk(3).indices.tolist()
    assert preds[0].label == f"relu2_1:{preds[0].index}" and preds[0].probability is None


def test_saliency_concentrates_on_the_object(clf, shapes):
    x, y, boxes = shapes
    for i in range(len(y)):
        a = A.saliency(clf, x[i:i + 1], int(y[i]))
        assert a.map.shape == (32, 32) and bool((a.map >= 0).all())
        inside = box_mask(boxes[i])
        assert _in_out(a.map, inside) > 2, f"image {i}: saliency not concentrated on the object"
    assert count_hooks(clf) == 0


def test_saliency_of_a_channel_follows_its_activation(half_photo):
    scores = A.LayerScores("relu3_1")
    with torch.no_grad():
        act = scores.net(half_photo, ["relu3_1"])["relu3_1"][0]
    c = int(act.mean((1, 2)).argmax())
    a = A.saliency(scores, half_photo, c)
    assert a.target == f"relu3_1:{c}"
    up = F.interpolate(act[c][None, None], size=(64, 64), mode="bilinear", align_corners=False)[0, 0]
    smooth = F.avg_pool2d(a.map[None, None], 5, 1, 2, count_include_pad=False)[0, 0]
    r = np.corrcoef(smooth.flatten().numpy(), up.flatten().numpy())[0, 1]
    assert r > 0.4, f"correlation with the channel's activation {r:.2f}"
    assert float(a.map[:, 32:].sum() / a.map.sum()) > 0.6
    assert count_hooks(scores) == 0


def test_grabcut_seeded_by_saliency_cuts_out_the_object(clf, shapes):
    x, y, boxes = shapes
    ious = []
    for i in range(len(y)):
        a = A.saliency(clf, x[i:i + 1], int(y[i]))
        mask = torch.from_numpy(A.segment_salient(x[i:i + 1], a.map))
        obj = object_mask(int(y[i]), boxes[i])
        ious.append(float((mask & obj).sum() / (mask | obj).sum()))
    assert min(ious) > 0.8, f"IoU with the object: {np.round(ious, 2)}"


def test_guided_backprop_and_deconvnet(clf, shapes):
    x, y, boxes = shapes
    for i in range(len(y)):
        inside = box_mask(boxes[i])
        gb = A.guided_backprop(clf, x[i:i + 1], int(y[i]))
        dc = A.deconvnet(clf, x[i:i + 1], int(y[i]))
        assert gb.map.shape == dc.map.shape == (3, 32, 32)
        assert _in_out(gb.map.abs().sum(0), inside) > 3
        assert _in_out(dc.map.abs().sum(0), inside) > 1  # deconvnet is famously less selective
        assert not torch.allclose(gb.map, dc.map)
    assert count_hooks(clf) == 0
    picture = A.gradient_image(gb.map)
    assert float(picture.min()) >= 0 and float(picture.max()) <= 1 and float(picture.std()) > 0.01


def test_gradcam_for_the_true_class_peaks_on_the_object(clf, shapes):
    x, y, boxes = shapes
    for i in range(len(y)):
        a = A.grad_cam(clf, x[i:i + 1], int(y[i]))
        assert a.extra["layer"] == "features" and a.extra["cam"].shape == (8, 8)
        peak = int(a.map.flatten().argmax())
        assert box_mask(boxes[i], margin=3).flatten()[peak], f"image {i}: Grad-CAM peak off the object"
        assert _in_out(a.map, box_mask(boxes[i])) > 3
        assert torch.allclose(a.extra["guided"], a.extra["guided_backprop"] * a.map)
    assert count_hooks(clf) == 0


def test_gradcam_of_a_channel_at_its_own_layer_is_its_activation(half_photo):
    scores = A.LayerScores("relu2_1")
    with torch.no_grad():
        act = scores.net(half_photo, ["relu2_1"])["relu2_1"][0, 7]
    a = A.grad_cam(scores, half_photo, 7, layer="relu2_1", guided=False)
    cam = a.extra["cam"]
    assert torch.allclose(cam / cam.max(), act / act.max(), atol=1e-4)
    assert A.grad_cam(scores, half_photo, 7, guided=False).extra["layer"] == "relu1_2"
    with pytest.raises(PerceptError, match="comes after the target layer relu2_1"):
        A.grad_cam(scores, half_photo, 7, layer="relu3_1")
    assert count_hooks(scores) == 0


def test_occluding_the_object_lowers_the_score_more_than_background(clf, shapes):
    x, y, boxes = shapes
    for i in (0, 1, 2, 3):
        a = A.occlusion(clf, x[i:i + 1], int(y[i]), patch=6, stride=2, probability=False)
        inside = box_mask(boxes[i])
        assert float(a.map[inside].mean()) > 3 * float(a.map[~inside].abs().mean())
        assert float(a.extra["occluded"][inside].mean()) < float(a.extra["occluded"][~inside].mean())
        p = A.occlusion(clf, x[i:i + 1], int(y[i]), patch=6, stride=2)
        assert 0 <= p.extra["base"] <= 1 and float(p.map[inside].mean()) > float(p.map[~inside].mean())
    assert count_hooks(clf) == 0


def test_fooling_reaches_the_target_class_with_a_small_change(clf, shapes):
    x, y, _ = shapes
    for i in (0, 1, 2):
        to = (int(y[i]) + 1) % 4
        r = fooling_image(clf, x[i:i + 1], to, labels=LABELS)
        assert r.success and r.final_index == to and r.label == LABELS[to]
        assert r.start_index == int(y[i])
        with torch.no_grad():
            assert int(clf(r.image).argmax()) == to  # the 8-bit image really fools it
        assert torch.equal(torch.round(r.image * 255), r.image * 255)
        # each step moves a pixel by at most 1/255; rounding the result to 8 bits adds at most 0.5/255
        assert r.linf < 0.15 and r.linf <= (r.steps + 0.5) / 255 + 1e-6, f"Linf {r.linf:.3f} after {r.steps} steps"
        assert r.l2 == pytest.approx(float((r.image - r.original).norm()), rel=1e-4)


def test_fooling_at_the_photos_own_size_survives_the_usual_preprocessing(clf, shapes):
    """With ``input_size`` the picture keeps its size (here 3x the classifier's 32, not square) and every usual
    view of the 8-bit result (resize-and-crop, squash) is the target class, also resampled by PIL."""
    from percept.visualize.classviz import usual_views

    x, y, _ = shapes
    big = torch.nn.functional.interpolate(x[:1], size=(96, 130), mode="bilinear", align_corners=False)
    to = (int(y[0]) + 1) % 4
    r = fooling_image(clf, big, to, labels=LABELS, input_size=32)
    assert r.success and r.image.shape == big.shape and r.label == LABELS[to]
    assert "resize to 37 and centre-crop 32" in r.holds_for and "squash to 32x32" in r.holds_for
    with torch.no_grad():
        for _, view in usual_views(32):
            assert int(clf(view(r.image)).argmax()) == to
        pil = Image.fromarray((r.image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        squashed = to_tensor(pil.resize((32, 32), Image.BILINEAR))
        assert int(clf(squashed).argmax()) == to
        d = r.difference(10)
        assert float(d.min()) >= 0 and float(d.max()) <= 1
    assert count_hooks(clf) == 0


def test_class_model_visualisation_raises_the_class_score(clf):
    r = class_model(clf, 2, size=32, steps=40, labels=LABELS)
    assert r.target == "blue stripes"
    assert r.score > r.start_score + 10 and r.probability > 0.99
    assert r.image.shape == (1, 3, 32, 32) and float(r.image.std()) > 0.05
    with pytest.raises(PerceptError, match="gradient of .* is zero"):
        class_model(clf, 2, size=32, steps=5, init="zero")  # its features are all off on plain grey
    ch = class_model(None, "relu2_1:5", size=32, steps=10)
    assert ch.score > 3 * ch.start_score and ch.target == "relu2_1:5"


class Flaky(nn.Module):
    """The trained classifier, but every forward after the first raises (as a bad input might)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("boom")
        return self.net(x)


@pytest.mark.parametrize("tool", ["saliency", "guided_backprop", "deconvnet", "grad_cam", "occlusion"])
def test_hooks_are_removed_after_an_error(clf, shapes, tool):
    model = Flaky(clf)
    with pytest.raises(RuntimeError, match="boom"):
        getattr(A, tool)(model, shapes[0][:1], 0)
    assert count_hooks(model) == 0


def test_bad_targets_are_one_line_errors(clf, shapes, half_photo):
    x = shapes[0][:1]
    with pytest.raises(PerceptError, match=r"class index 4 is out of range; this classifier has classes 0\.\.3"):
        A.saliency(clf, x, 4)
    with pytest.raises(PerceptError, match="unknown layer 'relu9_1'"):
        A.saliency(None, half_photo, "relu9_1:0")
    with pytest.raises(PerceptError, match=r"relu2_1 has channels 0\.\.127, got 128"):
        A.grad_cam(None, half_photo, "relu2_1:128")
    with pytest.raises(PerceptError, match="unknown layer 'fc9' for Grad-CAM; .*features"):
        A.grad_cam(clf, x, 0, layer="fc9")
    with pytest.raises(PerceptError, match=r"relu2_1 has channels 0\.\.127"):
        A.saliency(A.LayerScores("relu2_1"), half_photo, 200)
    assert count_hooks(clf) == 0


def test_classifier_files_round_trip_and_bad_ones_are_refused(tmp_path, clf, clf_file, shapes):
    lc = A.load_classifier_file(clf_file)
    assert lc.labels == LABELS and lc.input_size == 32 and isinstance(lc.model, A.SmallCNN)
    with torch.no_grad():
        assert torch.equal(lc.model(shapes[0]), clf(shapes[0]))
    bad = tmp_path / "bad.pt"
    torch.save({"kind": "decoder"}, bad)
    with pytest.raises(PerceptError, match="not a percept classifier file"):
        A.load_classifier_file(bad)
    assert len(A.read_labels("imagenet")) == 1000


# ------------------------------------------------------------------------------------------ command line

def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _pngs_ok(folder, names):
    for n in names:
        arr = np.asarray(Image.open(folder / n).convert("RGB"), dtype=np.float32)
        assert arr.std() > 2, f"{n} is flat"


COMMANDS = {  # command: (extra options, files written for a photo named {photo})
    "predict": ([], ["{photo}_predict.png"]),
    "saliency": (["--segment"], ["{photo}_saliency.png", "{photo}_saliency_overlay.png", "{photo}_segment.png",
                                 "{photo}_segment_mask.png", "{photo}_saliency_sheet.png"]),
    "guided-backprop": ([], ["{photo}_guided_backprop.png", "{photo}_guided_backprop_sheet.png"]),
    "deconvnet": ([], ["{photo}_deconvnet.png", "{photo}_deconvnet_sheet.png"]),
    "gradcam": ([], ["{photo}_gradcam.png", "{photo}_gradcam_overlay.png", "{photo}_guided_gradcam.png",
                     "{photo}_gradcam_sheet.png"]),
    "occlusion": (["--patch", "8", "--stride", "4"], ["{photo}_occlusion.png", "{photo}_occlusion_overlay.png",
                                                      "{photo}_occlusion_sheet.png"]),
    "fool": ([], ["{photo}_fooled.png", "{photo}_fool_diff.png", "{photo}_fool_sheet.png"]),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli_with_a_classifier_file(capsys, tmp_path, clf_file, photo_path, command):
    extra, names = COMMANDS[command]
    names = [n.format(photo=photo_path.stem) for n in names]
    if command == "fool":
        extra = ["--to", "blue stripes"]
    code, out, err = run(capsys, "viz", command, photo_path, "--classifier", clf_file, *extra, "-o", tmp_path,
                         "--device", "cpu", "--quiet")
    assert code == 0, err
    _pngs_ok(tmp_path, names)
    if command == "predict":
        assert out.count(" p=") == 4 and "red square" in out
    if command == "fool":
        assert "fooled in" in out and "-> blue stripes" in out and "Linf" in out


@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli_with_a_loss_network_channel(capsys, tmp_path, photo_path, command):
    extra, names = COMMANDS[command]
    names = [n.format(photo=photo_path.stem) for n in names]
    target = "relu2_1" if command == "predict" else "relu2_1:5"
    if command == "fool":
        with torch.no_grad():
            x = to_tensor(resize_long_side(load_image(photo_path), 40))
            target = f"relu2_1:{int(A.LayerScores('relu2_1')(x)[0].topk(2).indices[1])}"  # the runner-up channel
    code, out, err = run(capsys, "viz", command, photo_path, "--target", target, "--size", 40, *extra,
                         "-o", tmp_path, "--device", "cpu", "--quiet")
    assert code == 0, err
    _pngs_ok(tmp_path, names)
    if command == "gradcam":
        assert "at relu1_2" in out


def test_cli_classviz(capsys, tmp_path, clf_file):
    code, out, err = run(capsys, "viz", "classviz", "--classifier", clf_file, "--class", "1", "--class", "yellow cross",
                         "--steps", 15, "-o", tmp_path, "--quiet")
    assert code == 0, err
    assert "green disc: score" in out and "yellow cross: score" in out
    _pngs_ok(tmp_path, ["classviz_green_disc.png", "classviz_yellow_cross.png", "classviz_sheet.png"])
    code, out, err = run(capsys, "viz", "classviz", "--target", "relu2_1:5", "--size", 32, "--steps", 5,
                         "-o", tmp_path, "--quiet")
    assert code == 0, err
    _pngs_ok(tmp_path, ["classviz_relu2_1_5.png"])


def test_cli_torchvision_classifier_from_a_local_file(capsys, tmp_path, photo_path):
    import torchvision

    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    code, out, err = run(capsys, "viz", "gradcam", photo_path, "--classifier", "resnet18", "--weights", weights,
                         "--size", 64, "--labels", "imagenet", "--class", "tabby", "-o", tmp_path, "--quiet")
    assert code == 0, err
    assert "Grad-CAM of tabby" in out and "at layer4" in out
    code, out, err = run(capsys, "viz", "predict", photo_path, "--classifier", "resnet18", "--weights", weights,
                         "--size", 64, "-o", tmp_path)
    assert code == 0, err
    assert out.count(" p=") == 5 and "class " in out  # ImageNet-sized and no labels: indices


@pytest.mark.parametrize("argv,message", [
    (["saliency", "{photo}", "--classifier", "{clf}", "--class", "4"], "this classifier has classes 0..3"),
    (["gradcam", "{photo}", "--classifier", "{clf}", "--class", "purple"], "unknown class 'purple'; this classifier's classes are 0 ("),
    (["saliency", "{photo}", "--target", "relu9_1:3"], "unknown layer 'relu9_1'"),
    (["occlusion", "{photo}", "--target", "relu2_1:128"], "relu2_1 has channels 0..127, got 128"),
    (["guided-backprop", "{photo}", "--target", "relu2_1"], "give a channel as LAYER:CHANNEL"),
    (["gradcam", "{photo}", "--target", "relu2_1:3", "--layer", "relu3_1"], "comes after the target layer"),
    (["gradcam", "{photo}", "--classifier", "{clf}", "--layer", "layer4"], "unknown layer 'layer4' for Grad-CAM"),
    (["fool", "{photo}", "--classifier", "{clf}"], "fool needs --to CLASS"),
    (["fool", "{photo}", "--target", "relu2_1:3", "--to", "4"], "--to goes with --classifier"),
    (["predict", "{photo}", "--classifier", "{clf}", "--labels", "{photo}"], "not a UTF-8 text file"),
    (["classviz", "--classifier", "{clf}", "--class", "7"], "this classifier has classes 0..3"),
])
def test_cli_errors_are_one_line(capsys, tmp_path, clf_file, photo_path, argv, message):
    argv = [a.format(photo=photo_path, clf=clf_file) for a in argv]
    code, out, err = run(capsys, "viz", *argv, "--size", 32, "-o", tmp_path, "--quiet")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("percept: error: ") and "Traceback" not in err
    assert message in err


def test_torchvision_weights_come_from_the_hub_cache(capsys, tmp_path, monkeypatch, photo_path):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))  # an empty cache first: a clear error
    code, _, err = run(capsys, "viz", "predict", photo_path, "--classifier", "resnet18", "--size", 32, "-o", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "no weights for resnet18: give --weights PATH, or put" in err
    cache = tmp_path / "th" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), cache / "resnet18-f37072fd.pth")
    code, out, err = run(capsys, "viz", "predict", photo_path, "--classifier", "resnet18", "--size", 32, "-o", tmp_path)
    assert code == 0, err
    assert out.count(" p=") == 5


def test_cli_fool_that_does_not_get_there_says_so(capsys, tmp_path, clf_file, photo_path):
    code, out, err = run(capsys, "viz", "fool", photo_path, "--classifier", clf_file, "--to", "green disc",
                         "--max-steps", 1, "-o", tmp_path, "--quiet")
    assert code == 1, err
    assert "not fooled after 1 steps: green disc not reached" in out
    _pngs_ok(tmp_path, [f"{photo_path.stem}_fooled.png", f"{photo_path.stem}_fool_sheet.png"])
