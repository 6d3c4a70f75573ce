"""Image input/output and tensor <-> image conversion: the one place that touches files of pixels.

Every image enters the project through :func:`load_image` (PIL, EXIF orientation applied, CMYK /
16-bit / palette / RGBA / greyscale turned into 8-bit RGB) and leaves through :func:`save_image`
(written to a temporary file and renamed, so a failure never leaves half a picture behind). Every
output file of percept goes through :func:`atomic_path`; strength and colour preservation are
:func:`finish_frame`, the one implementation behind the API, the CLI, video and the webcam.
Tensors are float NCHW RGB in [0, 1] everywhere outside the loss network.

The image primitives live here once: the long-side fit (:func:`fit_long_side`, behind
:func:`resize_long_side` and :func:`working_size`) and the uint8 <-> float pair (:func:`to_float`,
:func:`to_uint8`, behind :func:`to_tensor` and :func:`to_image`). (The ImageNet mean and standard
deviation are a network's preprocessing: :mod:`percept.models.vgg` declares them.)

(Named ``images``, not ``imageio``, so that it is not mistaken for the ``imageio`` package.)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from percept.errors import PerceptError

if TYPE_CHECKING:  # torch is imported where a tensor is made: the numpy users (flow, the temporal filter) skip it
    import torch

MIN_SIDE = 16
"""Smallest image side we accept: the networks downsample by 4 and the loss network by 16."""
MIN_FRAME_SIDE = 8
"""Smallest side a video frame is shrunk to (the video's working size, the flow's frames)."""

SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                ".tif": "TIFF", ".tiff": "TIFF"}

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB; transparency is composited over white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        if mode == "F":
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / max(hi - lo, 1e-12) * 255.0
        else:
            arr = arr / hi * 255.0
        return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def load_image(image: ImageLike, min_side: int = MIN_SIDE) -> Image.Image:
    """Open an image as 8-bit RGB with its EXIF orientation applied.

    Args:
        image: a path, a PIL image or an HxW / HxWx3 / HxWx4 uint8 (or float in [0, 1]) array.
        min_side: both sides must be at least this many pixels.

    Raises:
        PerceptError: the file is missing, empty, not an image, truncated, or too small.
    """
    if isinstance(image, Image.Image):
        img = image
    elif isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            arr = to_uint8(arr.astype(np.float64))
        img = Image.fromarray(arr)
    else:
        path = Path(image)
        if not path.exists():
            raise PerceptError(f"{path}: no such file")
        if path.is_dir():
            raise PerceptError(f"{path}: is a folder, not an image")
        if path.stat().st_size == 0:
            raise PerceptError(f"{path}: the file is empty")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow's notes on damaged files ("Tag data larger than file")
                with Image.open(path) as opened:
                    opened.load()
                    img = ImageOps.exif_transpose(opened)
                    img.load()
        except UnidentifiedImageError:
            raise PerceptError(f"{path}: not an image file PIL can read") from None
        except Image.DecompressionBombError:
            limit = (Image.MAX_IMAGE_PIXELS or 0) * 2 / 1e6
            raise PerceptError(f"{path}: the image is larger than percept opens (over {limit:.0f} megapixels, "
                               "Pillow's decompression-bomb limit); resize it first") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise PerceptError(f"{path}: cannot decode image ({exc})") from None
    img = _to_rgb(img)
    if min(img.size) < min_side:
        w, h = img.size
        raise PerceptError(f"image is too small ({w}x{h}); both sides need at least {min_side} px")
    return img


def image_size(path: Union[str, os.PathLike]) -> tuple[int, int]:
    """(width, height) from an image file's header, without decoding the pixels (a 144-megapixel photo
    is sized in milliseconds). Files Pillow cannot identify raise the same errors as :func:`load_image`."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return load_image(path).size    # the missing / folder / empty-file messages
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as opened:
                return opened.size
    except UnidentifiedImageError:
        raise PerceptError(f"{path}: not an image file PIL can read") from None
    except Image.DecompressionBombError:
        return load_image(path).size    # its one-line message
    except (OSError, SyntaxError, ValueError) as exc:
        raise PerceptError(f"{path}: cannot decode image ({exc})") from None


# ------------------------------------------------------------------------- the long-side fit

FIT_RULE = ("each side is scaled by size / long side and rounded to the nearest pixel (Python's round, "
            "half to even), never below a minimum side; the aspect ratio is kept")
"""How :func:`fit_long_side` computes a size, in words (for docstrings and help texts)."""
UPSCALE_RULE = "the long side becomes SIZE px: a smaller photo is enlarged, a larger one reduced"
"""``percept stylize --size`` (and :func:`resize_long_side` by default): fit up and down."""
DOWNSCALE_RULE = "a frame whose long side is over SIZE px is reduced to SIZE px; a smaller one is never enlarged"
"""``percept video --size`` and the webcam (and ``upscale=False``): fit down only."""


def fit_long_side(width: int, height: int, size: int | None, upscale: bool = True,
                  min_side: int = 1) -> tuple[int, int]:
    """The (width, height) of a ``width`` x ``height`` picture scaled so its long side is ``size`` px:
    the one long-side rule of percept (:data:`FIT_RULE`).

    Args:
        size: the long side wanted; ``None`` keeps the size.
        upscale: ``True`` fits up and down (:data:`UPSCALE_RULE`); ``False`` only shrinks a picture whose
            long side is over ``size`` (:data:`DOWNSCALE_RULE`).
        min_side: neither side comes out smaller than this (a very thin picture's short side).

    Each side is ``round(side * size / long_side)`` (Python's ``round``, half to even), at least
    ``min_side``; the long side comes out exactly ``size``. A picture whose long side already is ``size``
    (or, without ``upscale``, is smaller) keeps its size.
    """
    if size is None:
        return width, height
    long = max(width, height)
    if long == size or (not upscale and long <= size):
        return width, height
    scale = size / long
    return max(min_side, round(width * scale)), max(min_side, round(height * scale))


def working_size(size: tuple[int, int], long_side: int | None, upscale: bool = True) -> tuple[int, int]:
    """(width, height) after :func:`resize_long_side` to ``long_side`` (``None``: unchanged); see
    :func:`fit_long_side`."""
    return fit_long_side(size[0], size[1], long_side, upscale)


def resize_long_side(img: Image.Image, size: int | None, upscale: bool = True) -> Image.Image:
    """Scale (Lanczos) so the longer side is ``size`` pixels (no-op for ``None``), keeping the aspect ratio:
    :func:`fit_long_side`. By default a smaller picture is enlarged (:data:`UPSCALE_RULE`); with
    ``upscale=False`` it is left as it is (:data:`DOWNSCALE_RULE`). The same image comes back when its
    size does not change."""
    fitted = fit_long_side(img.width, img.height, size, upscale)
    return img if fitted == img.size else img.resize(fitted, Image.Resampling.LANCZOS)


# ------------------------------------------------------------------------- pixels: uint8 <-> float

def to_float(pixels: Union[np.ndarray, Image.Image]) -> np.ndarray:
    """uint8 pixels (an array, or a PIL image) -> float32 in [0, 1]: ``x / 255`` in float32, same shape
    (HxWx3 stays HxWx3). The inverse of :func:`to_uint8`."""
    return np.asarray(pixels, dtype=np.float32) / np.float32(255.0)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Float values in [0, 1] -> uint8: clipped to [0, 1], then ``x * 255 + 0.5`` truncated (round half up),
    computed in the array's own float precision (float32 stays float32). ``to_uint8(to_float(u)) == u``."""
    return (np.clip(values, 0, 1) * 255 + 0.5).astype(np.uint8)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB image -> float tensor (1, 3, H, W) in [0, 1]."""
    import torch

    arr = to_float(_to_rgb(img))
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()).unsqueeze(0)


def to_image(tensor: torch.Tensor) -> Image.Image:
    """Float tensor (1, 3, H, W) or (3, H, W) in [0, 1] -> PIL RGB image (values clipped)."""
    t = tensor.detach().float().cpu()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"to_image takes one image, got a batch of {t.shape[0]}")
        t = t[0]
    return Image.fromarray(to_uint8(t.numpy().transpose(1, 2, 0)), "RGB")


def check_output_path(path: Union[str, os.PathLike]) -> Path:
    """Validate an output file name before any work is done (known extension, existing folder)."""
    path = Path(path)
    if path.suffix.lower() not in SAVE_FORMATS:
        known = ", ".join(sorted(SAVE_FORMATS))
        raise PerceptError(f"{path}: unknown image extension '{path.suffix}' (use one of {known})")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise PerceptError(f"{parent}: is not a folder")
    if path.is_dir():
        raise PerceptError(f"{path}: is a folder; give the output a file name")
    check_writable(parent)
    return path


def check_writable(folder: Union[str, os.PathLike]) -> Path:
    """Fail before any work when ``folder`` (or, when it does not exist yet, the nearest folder above
    it that does) cannot be written: a read-only filesystem or no permission."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
        raise PerceptError(f"{probe}: cannot write there (a read-only filesystem, or no permission)")
    return folder


def temp_beside(path: Path, suffix: str = ".tmp") -> Path:
    """A new, empty, hidden temporary file in ``path``'s folder (created with that folder):
    ``.NAME.XXXXXXXX{suffix}``, so a rename onto ``path`` is atomic (one filesystem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def commit_temp(tmp: Path, path: Path) -> Path:
    """Flush ``tmp`` to disk, give it the permissions a plain ``open()`` would, rename it onto ``path``."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    apply_umask(tmp)
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def atomic_path(path: Union[str, os.PathLike], suffix: str = ".tmp") -> Iterator[Path]:
    """The one way percept writes an output file: yields a temporary path beside ``path``; when the
    block ends normally the file is flushed (fsync) and renamed onto ``path``; when it raises (Ctrl-C
    included) the temporary file is deleted. Either the old file or the new one, never half of one.

    >>> with atomic_path("out/model.onnx") as tmp:
    ...     tmp.write_bytes(data)
    """
    path = Path(path)
    try:
        tmp = temp_beside(path, suffix)
    except OSError as exc:
        raise PerceptError(f"{path}: cannot write it ({exc.strerror or exc.__class__.__name__})") from None
    try:
        yield tmp
        commit_temp(tmp, path)
    except OSError as exc:  # a full disk (ENOSPC), a read-only filesystem...: nothing is left behind
        raise PerceptError(f"{path}: cannot write it ({exc.strerror or exc.__class__.__name__}); nothing was saved") from None
    finally:
        tmp.unlink(missing_ok=True)


def save_image(img: Image.Image, path: Union[str, os.PathLike]) -> Path:
    """Write an image atomically (:func:`atomic_path`); the format follows the extension."""
    path = check_output_path(path)
    fmt = SAVE_FORMATS[path.suffix.lower()]
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        img.save(fh, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path


def check_strength(strength: float) -> float:
    """``strength`` must be in [0, 1] (0: the photo, 1: full style)."""
    if not 0.0 <= strength <= 1.0:
        raise PerceptError(f"strength must be between 0 and 1, got {strength}")
    return float(strength)


def finish_frame(stylized: np.ndarray, photo: np.ndarray, strength: float = 1.0,
                 preserve_color: bool = False) -> np.ndarray:
    """Colour preservation and strength on uint8 HxWx3 RGB arrays of one size: the one implementation
    that the API, the CLI, video and the webcam share.

    ``preserve_color``: luminance-only transfer (Gatys et al. 2016, "Preserving Color in Neural
    Artistic Style Transfer"): the stylised frame's luma (ITU-R BT.601 YCbCr, as Pillow computes it)
    with the photo's chroma. ``strength``: ``photo * (1 - s) + stylised * s``, rounded.
    """
    check_strength(strength)
    if stylized.shape != photo.shape:
        raise PerceptError(f"stylised and original frames differ in size: {stylized.shape} vs {photo.shape}")
    out = stylized
    if preserve_color:
        luma = np.asarray(Image.fromarray(stylized, "RGB").convert("YCbCr"))[..., 0]
        ycc = np.array(Image.fromarray(photo, "RGB").convert("YCbCr"))
        ycc[..., 0] = luma
        out = np.asarray(Image.fromarray(ycc, "YCbCr").convert("RGB"))
    if strength < 1.0:
        out = (photo.astype(np.float32) * np.float32(1.0 - strength) + out.astype(np.float32) * np.float32(strength)
               + np.float32(0.5)).astype(np.uint8)
    return out


def _same_size(original: Image.Image, size: tuple[int, int]) -> Image.Image:
    return original if original.size == size else original.resize(size, Image.Resampling.LANCZOS)


def preserve_color(stylized: Image.Image, original: Image.Image) -> Image.Image:
    """Keep the stylised image's luminance and the photo's colours (see :func:`finish_frame`)."""
    original = _same_size(original.convert("RGB"), stylized.size)
    return Image.fromarray(finish_frame(np.asarray(stylized.convert("RGB")), np.asarray(original), 1.0, True), "RGB")


def blend(stylized: Image.Image, original: Image.Image, strength: float) -> Image.Image:
    """Mix the stylised picture with the photo: 1 is full style, 0 the untouched photo."""
    if check_strength(strength) >= 1.0:
        return stylized
    original = _same_size(original.convert("RGB"), stylized.size)
    return Image.fromarray(finish_frame(np.asarray(stylized.convert("RGB")), np.asarray(original), strength), "RGB")


def apply_umask(path: Union[str, os.PathLike]) -> None:
    """mkstemp creates 0600 files; give the finished file the permissions a plain open() would."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def atomic_write_bytes(path: Union[str, os.PathLike], data: bytes) -> None:
    """Write bytes to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _image_files(folder: str) -> Iterator[str]:
    """Image file paths under ``folder``, read from the directory entries alone (``os.scandir``'s file
    type, no ``stat`` per file): 100,000 photos list in well under a second."""
    stack = [folder]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as it:
                for entry in it:
                    if entry.is_dir():
                        stack.append(entry.path)
                    elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS and entry.is_file():
                        yield entry.path
        except OSError:
            continue  # an unreadable sub-folder holds no usable photos


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files in ``folder`` (recursively); a missing or empty folder is a user error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PerceptError(f"{folder}: no such folder")
    files = sorted(Path(p) for p in _image_files(str(folder)))  # Path order, as before: the hold-out split stays
    if not files:
        raise PerceptError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


# ------------------------------------------------------------------------- paintings (style images)

STYLE_SIDE = 512
"""Long side the painting is read at (a huge painting is downscaled; its strokes are the point)."""
MIN_STYLE_SIDE = 32
"""Smallest painting side accepted (it must still have relu5_1 features: 1/16 of the side)."""
MIN_STYLE_STD = 2.0 / 255
"""A painting whose pixels vary less than this (standard deviation) is one flat colour: nothing to transfer."""


def check_painting(img: Image.Image, name: str) -> Image.Image:
    """The painting as the transfer reads it (long side at most :data:`STYLE_SIDE`), or one clear error for
    one that is too small or a single flat colour."""
    if min(img.size) < MIN_STYLE_SIDE:
        raise PerceptError(f"{name}: the style image is {img.width}x{img.height} px; give one of at least "
                           f"{MIN_STYLE_SIDE}x{MIN_STYLE_SIDE} px")
    img = resize_long_side(img, STYLE_SIDE, upscale=False)
    if float(np.asarray(img.convert("RGB"), np.float32).reshape(-1, 3).std(0).max()) / 255 < MIN_STYLE_STD:
        raise PerceptError(f"{name}: the style image is one flat colour; there is no texture or colour variation "
                           "to transfer")
    return img


def painting_label(painting: "ImageLike", name: str = "style", file_name: bool = False) -> str:
    """What a painting is called: its path (in messages), or with ``file_name`` the file's name (in model
    names and files); ``name`` for a picture given in memory."""
    if not isinstance(painting, (str, os.PathLike)):
        return name
    return Path(str(painting)).name if file_name else str(painting)


def painting_tensor(painting: "ImageLike", name: str = "style"):
    """A painting (path, PIL image or array) checked by :func:`check_painting` as a (1, 3, h, w) tensor in [0, 1]."""
    label = painting_label(painting, name)
    return to_tensor(check_painting(load_image(painting), label))
