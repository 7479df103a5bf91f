from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artkit.data.decode_cache import RECORD, estimate_bytes
from artkit.data.images import check_image_header, load_image, to_rgb
from artkit.errors import ImageLoadError


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F", "1"])
def test_every_mode_becomes_rgb(tmp_path: Path, mode: str):
    img = Image.new("RGB", (20, 10), (120, 60, 30)).convert(mode) if mode not in ("I;16", "I", "F", "PA") else None
    if mode == "I;16":
        img = Image.fromarray(np.full((10, 20), 40000, dtype=np.uint16))
    elif mode in ("I", "F"):
        img = Image.new(mode, (20, 10), 100)
    path = tmp_path / ("x.tif" if mode in ("I;16", "I", "F", "CMYK") else "x.png")
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (20, 10)


def test_palette_modes_with_alpha_become_rgb():
    pa = Image.new("P", (5, 5), 3).convert("PA")
    p_transparent = Image.new("P", (5, 5), 0)
    p_transparent.info["transparency"] = 0
    assert to_rgb(pa).mode == "RGB" and to_rgb(p_transparent).mode == "RGB"
    assert to_rgb(p_transparent).getpixel((0, 0)) == (255, 255, 255)


def test_16_bit_is_rescaled_not_clipped(tmp_path: Path):
    Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(tmp_path / "a.png")
    px = np.asarray(load_image(tmp_path / "a.png"))
    assert 120 <= px[0, 0, 0] <= 135  # mid-grey, not saturated white


def test_transparency_is_composited_on_white(tmp_path: Path):
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "t.png")
    assert np.asarray(load_image(tmp_path / "t.png"))[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path: Path):
    img = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").size == (20, 40)


def test_large_jpeg_is_decoded_at_reduced_size(tmp_path: Path):
    Image.new("RGB", (1600, 1200), (90, 90, 90)).save(tmp_path / "big.jpg")
    small = load_image(tmp_path / "big.jpg", min_size=128)
    assert min(small.size) >= 128 and small.size[0] <= 400  # draft picked a 1/4 or 1/8 scale
    assert load_image(tmp_path / "big.jpg").size == (1600, 1200)


@pytest.mark.parametrize(
    "size,min_size,decoded",
    [
        ((256, 256), 128, (128, 128)),
        ((512, 384), 96, (128, 96)),
        ((771, 1024), 256, (386, 512)),
        ((255, 300), 128, (255, 300)),
    ],
)
def test_jpeg_draft_reduces_by_the_largest_factor_that_keeps_min_size(tmp_path: Path, size, min_size, decoded):
    # an image of exactly 2x (or 4x) min_size used to be decoded in full: the box asked of draft was a pixel too big
    Image.new("RGB", size, (90, 60, 30)).save(tmp_path / "x.jpg")
    img = load_image(tmp_path / "x.jpg", min_size=min_size)
    assert img.size == decoded and min(img.size) >= min(min_size, *size)
    assert estimate_bytes([str(tmp_path / "x.jpg")], min_size) == decoded[0] * decoded[1] * 3 + RECORD.size


def test_other_formats_shrink_by_the_whole_factor(tmp_path: Path):
    Image.new("RGB", (300, 200), (90, 60, 30)).save(tmp_path / "x.png")
    assert load_image(tmp_path / "x.png", min_size=64).size == (100, 67)
    assert estimate_bytes([str(tmp_path / "x.png")], 64) == 100 * 67 * 3 + RECORD.size


@pytest.mark.parametrize(
    "content,reason", [(None, "not found"), (b"", "not an image"), (b"hello, I am text", "not an image")]
)
def test_bad_files_name_the_file(tmp_path: Path, content, reason):
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageLoadError) as err:
        load_image(path)
    assert str(path) in err.value.message and reason in err.value.message and "artkit clean" in err.value.hint


def test_truncated_jpeg_is_an_error_not_a_grey_image(tmp_path: Path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=r"cut\.jpg"):
        load_image(tmp_path / "cut.jpg")


def test_header_check(tmp_path: Path):
    Image.new("RGB", (4, 4)).save(tmp_path / "ok.png")
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("no")
    assert check_image_header(tmp_path / "ok.png") is None
    assert check_image_header(tmp_path / "zero.jpg") == "empty file"
    assert check_image_header(tmp_path / "text.jpg") == "not an image"
    assert check_image_header(tmp_path / "missing.jpg") == "missing"


def test_decompression_bomb_guard_is_kept(tmp_path: Path, monkeypatch):
    Image.new("RGB", (100, 100)).save(tmp_path / "b.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 10,000 px is > 2x the limit: Pillow refuses
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(tmp_path / "b.png")
