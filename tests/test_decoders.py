"""Feature-inversion decoders: shapes for every stride, training for real on tiny inputs (files, losses
that fall, exact resume, NaN guard, TensorBoard), the shipped decoders on a held-out photo, and
`percept invert` / `percept train-decoder` on good and bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch

from percept.checkpoint import load_checkpoint
from percept.cli import main
from percept.errors import PerceptError
from percept.models.decoder import DECODER_LAYERS, FeatureDecoder
from percept.models.vgg import LossNetwork, layer_stride
from percept.training.decoder import DecoderTrainConfig, _lr_at, train_decoder


@pytest.mark.parametrize("layer", ["relu1_1", "pool1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "pool5"])
def test_decoder_returns_stride_times_the_feature_size(layer):
    s = layer_stride(layer)
    dec = FeatureDecoder(layer, width=16, n_blocks=1)
    feats = LossNetwork(layer)(torch.rand(1, 3, 70, 99), [layer])[layer]
    with torch.no_grad():
        y = dec(feats)
    assert y.shape == (1, 3, s * feats.shape[2], s * feats.shape[3])
    assert y.shape[2] == 70 - 70 % s and y.shape[3] == 99 - 99 % s
    assert 0 <= float(y.min()) and float(y.max()) <= 1


def test_decoder_refuses_features_of_another_layer():
    dec = FeatureDecoder("relu3_1", width=8, n_blocks=0)
    with pytest.raises(PerceptError, match=r"inverts relu3_1 features \(256 channels\); got a tensor of shape "
                                           r"\(1, 128, 8, 8\)"):
        dec.check_features(torch.rand(1, 128, 8, 8))


def test_conv_and_unknown_layers_are_refused_with_the_valid_list():
    with pytest.raises(PerceptError, match="decoders invert relu/pool layers, not 'conv2_1'; valid layers: relu1_1"):
        FeatureDecoder("conv2_1")
    with pytest.raises(PerceptError, match="unknown layer 'relu6_1'; valid layers: .*pool5"):
        FeatureDecoder("relu6_1")
    assert "relu5_4" in DECODER_LAYERS and not any(n.startswith("conv") for n in DECODER_LAYERS)


def _cfg(out, data, **kw):
    base = dict(layer="relu2_1", data=str(data), out=str(out), name="d", image_size=32, batch_size=2,
                iterations=4, lr=2e-3, lr_final=2e-3, width=8, n_blocks=1, checkpoint_every=2, preview_every=2,
                log_every=1, holdout_every=3, device="cpu")
    base.update(kw)
    return DecoderTrainConfig(**base)


def test_training_writes_decoder_card_and_tensorboard(tmp_path, small_data):
    path = train_decoder(_cfg(tmp_path, small_data), progress=False)
    ckpt = load_checkpoint(path)
    assert ckpt["kind"] == "feature-decoder" and ckpt["config"]["layer"] == "relu2_1"
    assert ckpt["state_dict"]["out.1.weight"].dtype == torch.float16  # shipped half-size
    card = json.loads((tmp_path / "d.json").read_text())
    for key in ("layer", "data", "architecture", "hyperparameters", "iterations", "device", "wall_time_s",
                "final_losses_running_avg"):
        assert key in card
    assert card["iterations"] == 4 and card["data"]["held_out"] == ["coffee.jpg", "motorcycle.jpg"]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb" / "d"))
    acc.Reload()
    assert {"loss/pixel", "loss/total", "loss/psnr", "lr"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("loss/pixel")] == [1, 2, 3, 4]
    assert "held_out/photo_vs_reconstruction" in acc.Tags()["images"]


def test_pixel_loss_falls_and_feature_loss_is_logged(tmp_path, small_data):
    from percept.images import load_image, resize_long_side, to_tensor
    from percept.inference.invert import Inverter, crop_to_stride

    path = train_decoder(_cfg(tmp_path, small_data, iterations=80, lr=3e-3, lr_final=3e-4, width=16,
                              loss="pixel+feature", checkpoint_every=80, preview_every=80), progress=False)
    card = json.loads((tmp_path / "d.json").read_text())
    assert "feature" in card["final_losses_running_avg"]
    inv = Inverter("relu2_1", path, device="cpu")
    x = crop_to_stride(to_tensor(resize_long_side(load_image(sorted(small_data.iterdir())[2]), 48)), 2)
    y = inv.decode(inv.features(x))
    torch.manual_seed(0)
    untrained = FeatureDecoder("relu2_1", 16, 1)
    untrained.calibrate(inv.features(x))
    with torch.no_grad():
        before = float((untrained(inv.features(x)) - x).pow(2).mean())
    after = float((y - x).pow(2).mean())
    assert after < 0.5 * before


def test_resume_continues_exactly(tmp_path, small_data):
    straight = train_decoder(_cfg(tmp_path / "a", small_data), progress=False)
    train_decoder(_cfg(tmp_path / "b", small_data, iterations=2), progress=False)  # "killed" at step 2
    resumed = train_decoder(_cfg(tmp_path / "b", small_data), resume=True, progress=False)
    a, b = load_checkpoint(straight)["state_dict"], load_checkpoint(resumed)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(tmp_path / "b" / "d.train.pt")["step"] == 4
    with pytest.raises(PerceptError, match="--resume: layer was relu2_1"):
        train_decoder(_cfg(tmp_path / "b", small_data, layer="relu3_1", iterations=6), resume=True, progress=False)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, small_data):
    train_decoder(_cfg(tmp_path, small_data, iterations=2), progress=False)
    state = tmp_path / "d.train.pt"
    before = state.read_bytes()
    with pytest.raises(PerceptError, match=r"the loss became nan at step 3; .*last good checkpoint is .*d\.train\.pt"):
        train_decoder(_cfg(tmp_path, small_data, loss="pixel+feature", feature_weight=float("nan")),
                      resume=True, progress=False)
    assert state.read_bytes() == before


def test_a_linear_decoder_is_solved_in_closed_form(tmp_path, small_data):
    """``width=0`` on relu1_1: one least-squares solve; the held-out photos come back at a PSNR no trained
    decoder of this project reaches at any layer (an untrained one is far below 20 dB)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from percept.images import load_image, to_tensor
    from percept.inference.invert import Inverter

    path = train_decoder(_cfg(tmp_path, small_data, layer="relu1_1", width=0, iterations=12, image_size=48),
                         progress=False)
    ckpt = load_checkpoint(path)
    assert ckpt["config"]["width"] == 0 and set(ckpt["state_dict"]) == {"in_scale", "out.1.weight", "out.1.bias"}
    assert ckpt["state_dict"]["out.1.weight"].dtype == torch.float32
    card = json.loads((tmp_path / "d.json").read_text())
    assert card["solver"]["crops"] == card["iterations"] == 12 and not card["stopped_by_time_limit"]
    psnr = card["held_out_psnr_db_512"]
    assert set(psnr) == {"coffee.jpg", "motorcycle.jpg", "mean"} and psnr["mean"] > 30.0
    inv = Inverter("relu1_1", path, device="cpu")
    x = to_tensor(load_image(small_data / "coffee.jpg"))  # held out
    y = inv.decode(inv.features(x))
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    assert -10 * math.log10(float((y - x).pow(2).mean())) == pytest.approx(psnr["coffee.jpg"], abs=0.05)
    acc = EventAccumulator(str(tmp_path / "tb" / "d"))
    acc.Reload()
    assert "held_out/photo_vs_reconstruction" in acc.Tags()["images"] and "held_out/psnr_db_512" in acc.Tags()["scalars"]
    with pytest.raises(PerceptError, match="solved in one pass; there is nothing to --resume"):
        train_decoder(_cfg(tmp_path, small_data, layer="relu1_1", width=0), resume=True, progress=False)


def test_a_linear_decoder_is_only_for_stride_one_layers(capsys, tmp_path, small_data):
    with pytest.raises(PerceptError, match="inverts layers of stride 1 .* relu2_1 has stride 2"):
        FeatureDecoder("relu2_1", 0, 0)
    with pytest.raises(PerceptError, match="with no residual blocks; relu1_1 has stride 1 and 2 blocks were asked for"):
        FeatureDecoder("relu1_1", 0, 2)
    _one_line_error(capsys, ["train-decoder", "--layer", "pool1", "--linear", "--data", str(small_data), "--out",
                             str(tmp_path / "o")], "inverts layers of stride 1 (relu1_1, relu1_2)")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------ --loss adain

def test_an_adain_step_lowers_its_loss_on_a_fixed_batch():
    """The step's gradient is the loss's: repeated on one (photo, style) batch, both terms fall."""
    from percept.training.decoder import adain_decoder_step, adain_style_layers

    torch.manual_seed(0)
    net = LossNetwork("relu2_1")
    dec = FeatureDecoder("relu2_1", 16, 1)
    x, s = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32) * torch.tensor([1.0, 0.3, 0.1]).view(1, 3, 1, 1)
    dec.calibrate(net(x, ["relu2_1"])["relu2_1"])
    opt = torch.optim.Adam(dec.parameters(), lr=3e-3)
    assert adain_style_layers("relu4_1") == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    first = adain_decoder_step(dec, net, opt, x, s, "relu2_1", ["relu1_1", "relu2_1"], 1.0)
    for _ in range(25):
        last = adain_decoder_step(dec, net, opt, x, s, "relu2_1", ["relu1_1", "relu2_1"], 1.0)
    assert float(last["content"]) < 0.7 * float(first["content"]) and float(last["style"]) < 0.7 * float(first["style"])
    assert float(last["total"]) == pytest.approx(float(last["content"] + last["style"]), rel=1e-5)


def test_the_gram_term_is_the_style_metrics_loss_and_its_step_lowers_it():
    """``gram_weight``: per sample, the normalised Gram loss that StyleLoss (and StyleMetric) computes against
    one painting; with it on, repeated steps on a fixed batch lower it and ``total`` counts it."""
    from percept.models.losses import StyleLoss
    from percept.training.decoder import adain_decoder_step, gram_style_loss

    torch.manual_seed(0)
    net = LossNetwork("relu2_1")
    layers = ["relu1_1", "relu2_1"]
    x, s = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32) * torch.tensor([1.0, 0.3, 0.1]).view(1, 3, 1, 1)
    fx, fs = net(x, layers), net(s, layers)
    ref = StyleLoss(layers)  # sample 0 against style 0, sample 1 against style 1: the mean of the two
    per = []
    for i in range(2):
        ref.set_target(net, s[i:i + 1])
        per.append(float(ref({k: v[i:i + 1] for k, v in fx.items()})))
    assert float(gram_style_loss(fx, fs, layers)) == pytest.approx(sum(per) / 2, rel=1e-5)
    assert float(gram_style_loss(fs, fs, layers)) == 0.0
    dec = FeatureDecoder("relu2_1", 16, 1)
    dec.calibrate(net(x, ["relu2_1"])["relu2_1"])
    opt = torch.optim.Adam(dec.parameters(), lr=3e-3)
    first = adain_decoder_step(dec, net, opt, x, s, "relu2_1", layers, 1.0, gram_weight=2.0)
    for _ in range(25):
        last = adain_decoder_step(dec, net, opt, x, s, "relu2_1", layers, 1.0, gram_weight=2.0)
    assert float(last["gram"]) < 0.7 * float(first["gram"])
    assert float(last["total"]) == pytest.approx(float(last["content"] + last["style"] + 2 * last["gram"]), rel=1e-5)
    assert "gram" not in adain_decoder_step(dec, net, opt, x, s, "relu2_1", layers, 1.0)


def test_adain_training_from_a_decoder_writes_its_card_and_previews(tmp_path, small_data, data_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    start = train_decoder(_cfg(tmp_path / "recon", small_data, iterations=2), progress=False)
    cfg = _cfg(tmp_path / "a", small_data, name=None, loss="adain", styles=[str(data_dir / "styles")],
               init=str(start), iterations=3, checkpoint_every=3, style_layers=["relu1_1", "relu3_1"])
    path = train_decoder(cfg, progress=False)  # a style layer deeper than the decoder's: the loss network reaches it
    assert path.name == "decoder_relu2_1_adain.pt"  # never the reconstruction decoder's name
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["hyperparameters"]["style_layers"] == ["relu1_1", "relu3_1"]
    assert card["data"]["style_folders"] == [{"folder": str(data_dir / "styles"), "images": 2}]
    assert card["init"]["model"] == str(start) and card["architecture"]["width"] == 8
    assert set(card["final_losses_running_avg"]) == {"content", "style", "total"}
    assert card["use"].endswith("--method adain --decoder decoder_relu2_1_adain")
    init_scale = load_checkpoint(start)["state_dict"]["in_scale"]
    assert torch.equal(load_checkpoint(path)["state_dict"]["in_scale"], init_scale)  # kept, not re-measured
    acc = EventAccumulator(str(tmp_path / "a" / "tb" / "decoder_relu2_1_adain"))
    acc.Reload()
    assert {"loss/content", "loss/style"} <= set(acc.Tags()["scalars"])
    assert "held_out/photo_vs_adain" in acc.Tags()["images"]
    with pytest.raises(PerceptError, match=r"^--init .* inverts relu2_1 features, not relu3_1$"):
        train_decoder(_cfg(tmp_path / "b", small_data, layer="relu3_1", loss="adain",
                           styles=[str(data_dir / "styles")], init=str(start)), progress=False)
    assert not (tmp_path / "b").exists()
    with pytest.raises(PerceptError, match=r"^--init .* has n_blocks 1, not the --blocks 3 asked for; leave --blocks "
                                           r"out to keep its own$"):
        train_decoder(_cfg(tmp_path / "b", small_data, loss="adain", styles=[str(data_dir / "styles")],
                           init=str(start), n_blocks=3), progress=False)
    assert not (tmp_path / "b").exists()


def test_adain_bad_input(capsys, tmp_path, small_data, data_dir):
    base = ["train-decoder", "--data", str(small_data), "--out", str(tmp_path / "o")]
    styles = ["--styles", str(data_dir / "styles")]
    _one_line_error(capsys, [*base, "--layer", "relu4_1", "--loss", "adain"],
                    "--loss adain needs style images: give --styles FOLDER (repeat for several)")
    _one_line_error(capsys, [*base, "--layer", "pool2", "--loss", "adain", *styles],
                    "--loss adain transfers the style at a relu layer, not pool2")
    _one_line_error(capsys, [*base, "--layer", "relu4_1", *styles], "--styles is for --loss adain (this run's loss is pixel)")
    _one_line_error(capsys, [*base, "--layer", "relu1_1", "--linear", "--loss", "adain", *styles],
                    "--linear is solved for reconstruction; --loss adain trains a network decoder")
    _one_line_error(capsys, [*base, "--layer", "relu4_1", "--loss", "adain", "--styles", str(tmp_path / "none")],
                    "no such folder")
    _one_line_error(capsys, [*base, "--layer", "relu4_1", "--loss", "adain", *styles, "--style-layers", "relu6_1"],
                    "unknown layer 'relu6_1'; valid layers: ")
    _one_line_error(capsys, [*base, "--layer", "relu4_1", "--style-layers", "relu5_1"],
                    "--style-layers is for --loss adain (this run's loss is pixel)")
    _one_line_error(capsys, [*base, "--layer", "relu4_1", "--gram-weight", "2"],
                    "--gram-weight is for --loss adain (this run's loss is pixel)")
    assert not (tmp_path / "o").exists()


def test_learning_rate_decays_over_iterations_or_time():
    cfg = DecoderTrainConfig(layer="relu2_1", data="x", out="y", iterations=100, lr=1e-3, lr_final=1e-4)
    assert _lr_at(cfg, 0) == pytest.approx(1e-3) and _lr_at(cfg, 100) == pytest.approx(1e-4)
    assert _lr_at(cfg, 50) == pytest.approx(5.5e-4)
    cfg.time_limit = 1.0  # one minute: half of it gone is half the schedule, whatever the step
    assert _lr_at(cfg, 1, seconds=30.0) == pytest.approx(5.5e-4)


# ------------------------------------------------------------------------------- shipped decoders

# coffee.jpg at 128 px, measured on the CPU: image-space error 0.093 / 0.172 / 0.313 / 0.560 at relu2_1 /
# relu3_1 / relu4_1 / relu5_1 and 31.5 dB PSNR at relu2_1 (the old Kodak kodim20: 0.066 / 0.132 / 0.247 /
# 0.459). The error is relative to the photo's own contrast: a flat image at its mean scores 1.0 and an
# untrained decoder of the same architecture (calibrated on these features) about 2.2 at every layer, so
# each bound fails for a broken decoder. A photo the decoders reconstruct well keeps the bounds far below
# 1.0 (on the darker rocket.jpg relu5_1 scores 0.82, on motorcycle.jpg 0.84).
# relu1_1 (the linear decoder, solved by least squares): 0.058 and 35.6 dB on coffee.jpg at 128 px.
@pytest.mark.parametrize("layer,max_error", [("relu1_1", 0.1), ("relu2_1", 0.2), ("relu3_1", 0.35), ("relu4_1", 0.5), ("relu5_1", 0.8)])
def test_shipped_decoder_reconstructs_a_held_out_photo(data_dir, layer, max_error):
    """No scikit-image sample was among the decoders' training photos (see their cards' data)."""
    from percept.inference.invert import invert_decoder

    res = invert_decoder(data_dir / "content" / "coffee.jpg", layer, size=128, device="cpu")
    assert res.tensor.shape == res.target.shape
    assert res.image_error < max_error
    if layer in ("relu1_1", "relu2_1"):
        mse = float((res.tensor - res.target).pow(2).mean())
        assert -10 * math.log10(mse) >= (32.0 if layer == "relu1_1" else 24.0)  # 24: the PSNR target


# ------------------------------------------------------------------------------------ command line

def _one_line_error(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("percept: error: ") and message in err


def test_invert_with_the_shipped_decoder(capsys, tmp_path, photo_path):
    from PIL import Image

    out = tmp_path / "r.png"
    assert main(["invert", str(photo_path), "--layer", "relu3_1", "-o", str(out), "--size", "64",
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "image-space error" in text and "feature-space error" in text and text.strip().endswith(" s")
    assert Image.open(out).size == (64, 40)  # 64x43 cropped to the stride of relu3_1 (4)


def test_invert_by_optimisation(capsys, tmp_path, photo_path):
    out = tmp_path / "o.png"
    assert main(["invert", str(photo_path), "--layer", "relu2_1", "--method", "optimize", "-o", str(out),
                 "--size", "32", "--iterations", "3", "--quiet", "--device", "cpu"]) == 0
    assert "relu2_1, optimize" in capsys.readouterr().out and out.is_file()


def test_invert_bad_input(capsys, tmp_path, photo_path):
    out = str(tmp_path / "x.png")
    _one_line_error(capsys, ["invert", str(photo_path), "--layer", "relu9_1", "-o", out], "valid layers: relu1_1")
    _one_line_error(capsys, ["invert", str(photo_path), "--layer", "relu2_2", "-o", out],
                    "no shipped decoder for relu2_2 (shipped: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1)")
    _one_line_error(capsys, ["invert", str(photo_path), "--layer", "relu2_1", "--model", "decoder_relu3_1",
                             "-o", out], "decoder_relu3_1 inverts relu3_1 features, not relu2_1")
    _one_line_error(capsys, ["invert", str(photo_path), "--layer", "relu2_1", "--model", "starry_night", "-o", out],
                    "a 'style-transformer' checkpoint, not a feature decoder")
    _one_line_error(capsys, ["invert", str(tmp_path / "nope.jpg"), "--layer", "relu2_1", "-o", out], "no such file")
    assert not (tmp_path / "x.png").exists()


def test_train_decoder_bad_input(capsys, tmp_path, small_data):
    _one_line_error(capsys, ["train-decoder", "--layer", "pool5", "--data", str(small_data), "--out", str(tmp_path),
                             "--image-size", "100"], "--image-size must be a multiple of 32 (the stride of pool5)")
    _one_line_error(capsys, ["train-decoder", "--layer", "conv1_1", "--data", str(small_data), "--out",
                             str(tmp_path)], "decoders invert relu/pool layers, not 'conv1_1'")
    _one_line_error(capsys, ["train-decoder", "--layer", "relu2_1", "--data", str(tmp_path / "none"), "--out",
                             str(tmp_path)], "no such folder")


@pytest.mark.parametrize("layer", ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"])
def test_every_shipped_decoder_has_a_verified_onnx(data_dir, layer):
    import onnxruntime as ort

    from percept.images import load_image, resize_long_side, to_tensor
    from percept.inference.invert import Inverter, crop_to_stride
    from percept.registry import checkpoints_dir

    path = checkpoints_dir() / f"decoder_{layer}.onnx"
    assert path.is_file(), f"run `percept export decoder_{layer}`"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["percept.kind"] == "feature-decoder" and meta["percept.layer"] == layer
    inv = Inverter(layer, device="cpu")
    x = crop_to_stride(to_tensor(resize_long_side(load_image(data_dir / "content" / "chelsea.jpg"), 83)), 1)
    phi = inv.features(x)  # real features of an odd-sized photo
    got = sess.run(["image"], {"features": phi.numpy()})[0]
    assert got.shape == tuple(inv.decode(phi).shape)
    assert float(abs(got - inv.decode(phi).numpy()).max()) < 1e-3


def test_a_decoder_onnx_is_not_a_style_model(capsys, tmp_path, photo_path):
    from percept.registry import checkpoints_dir

    _one_line_error(capsys, ["stylize", str(photo_path), "--model", str(checkpoints_dir() / "decoder_relu2_1.onnx"),
                             "-o", str(tmp_path / "s.png")], "a feature decoder (VGG19 relu2_1 features in), not a style model")
