"""Still images: every input form, every output form, atomic writes, and still-mode convergence.

Inputs are generated here from the bundled public-domain portrait at 160 px so the network is fast;
assertions are on the decoded output files.
"""

from __future__ import annotations

import errno

import cv2
import numpy as np
import pytest
import torch

from tests.image_files import cmyk_jpeg, jpeg_with_orientation, palette_png
from vidmatte import InputError, MatteOptions, MattingEngine, OutputError
from vidmatte.io import images as imagefile
from vidmatte.io.formats import default_output
from vidmatte.io.images import exif_orientation
from vidmatte.model.network import Coarse
from vidmatte.stills import (
    STILL_PIXELS,
    converge,
    converge_coarse,
    is_image_path,
    matte_image,
    matte_still,
    read_image,
    still_scale,
    write_image,
)
from vidmatte.stills.converge import network_input, refine_in_strips

SIZE = 160
BODY = (slice(100, 150), slice(20, 80))  # the astronaut's suit at 160 px
BACKDROP = (slice(None), slice(125, None))  # right edge: background only


@pytest.fixture(scope="module")
def matter(engine):
    return engine


@pytest.fixture(scope="module")
def portrait(sample_rgb):
    return cv2.resize(sample_rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def save_rgb(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def load(path):
    """Decoded output: RGB(A) in RGB order, or a 2-D grey image; any depth."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"{path} is not a readable image"
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return image


@pytest.fixture(scope="module")
def reference(tmp_path_factory, portrait, matter):
    """The portrait (lossless PNG) matted with the defaults: decoded RGBA."""
    folder = tmp_path_factory.mktemp("reference")
    source = save_rgb(folder / "portrait.png", portrait)
    return load(matte_image(source, engine=matter))


def no_leftovers(folder):
    return not [p.name for p in folder.iterdir() if ".partial" in p.name]


def test_default_output_is_rgba_png_beside_the_input(tmp_path, portrait, matter):
    source = save_rgb(tmp_path / "photo.jpg", portrait)
    out = matte_image(source, engine=matter)
    assert out == default_output(source, "image") == tmp_path / "photo_matte.png"
    rgba = load(out)
    assert rgba.shape == (SIZE, SIZE, 4) and rgba.dtype == np.uint8
    alpha = rgba[..., 3]
    assert alpha[BODY].mean() > 240 and alpha[BACKDROP].mean() < 15
    # predicted foreground colour: the suit keeps its colour
    diff = np.abs(rgba[..., :3][BODY].astype(int) - portrait[BODY].astype(int)).mean()
    assert diff < 20
    assert no_leftovers(tmp_path)


def test_webp_output_is_lossless_rgba(tmp_path, portrait, matter, reference):
    source = save_rgb(tmp_path / "p.png", portrait)
    rgba = load(matte_image(source, tmp_path / "out.webp", engine=matter))
    assert rgba.shape == (SIZE, SIZE, 4)
    np.testing.assert_array_equal(rgba[..., 3], reference[..., 3])
    seen = reference[..., 3] > 0  # colour under fully transparent pixels carries no meaning
    np.testing.assert_array_equal(rgba[..., :3][seen], reference[..., :3][seen])


def test_write_image_webp_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    image[..., 3] = np.maximum(image[..., 3], 1)
    np.testing.assert_array_equal(load(write_image(tmp_path / "x.webp", image)), image)


def test_jpeg_output_is_a_composite_over_the_background(tmp_path, portrait, matter):
    source = save_rgb(tmp_path / "p.png", portrait)
    rgb = load(matte_image(source, tmp_path / "out.jpg", engine=matter, options=MatteOptions(background="blue")))
    assert rgb.shape == (SIZE, SIZE, 3)
    np.testing.assert_allclose(rgb[BACKDROP].reshape(-1, 3).mean(0), [0, 0, 255], atol=12)
    assert np.abs(rgb[BODY].astype(int) - portrait[BODY].astype(int)).mean() < 20


def test_alpha_output_is_a_grey_mask(tmp_path, portrait, matter, reference):
    source = save_rgb(tmp_path / "p.png", portrait)
    mask = load(matte_image(source, tmp_path / "mask.png", engine=matter, options=MatteOptions(output_type="alpha")))
    assert mask.ndim == 2 and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, reference[..., 3])


def test_16_bit_input_gives_16_bit_output(tmp_path, portrait, matter, reference):
    deep = portrait.astype(np.uint16) * 257  # same picture, 16-bit samples
    source = save_rgb(tmp_path / "deep.png", deep)
    rgba = load(matte_image(source, engine=matter))
    assert rgba.dtype == np.uint16 and rgba.shape == (SIZE, SIZE, 4)
    alpha = rgba[..., 3]
    assert np.any(alpha % 257 != 0)  # real 16-bit values, not 8-bit ones widened
    assert np.abs(alpha / 257 - reference[..., 3]).max() <= 1.0
    mask = load(matte_image(source, tmp_path / "mask.png", engine=matter, options=MatteOptions(output_type="alpha")))
    assert mask.dtype == np.uint16 and mask.ndim == 2
    # a format without 16-bit samples gets 8; TIFF keeps 16 (composite: no alpha in TIFF)
    assert load(matte_image(source, tmp_path / "deep.webp", engine=matter)).dtype == np.uint8
    tiff = load(matte_image(source, tmp_path / "deep.tif", engine=matter, options=MatteOptions(background="white")))
    assert tiff.dtype == np.uint16 and tiff.shape == (SIZE, SIZE, 3)
    assert tiff[BACKDROP].mean() > 65535 - 3000


def test_greyscale_input(tmp_path, portrait, matter):
    grey = cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    assert read_image(tmp_path / "grey.png").rgb.shape == (SIZE, SIZE, 3)
    rgba = load(matte_image(tmp_path / "grey.png", engine=matter))
    assert rgba.shape == (SIZE, SIZE, 4)
    assert rgba[..., 3][BODY].mean() > 200 and rgba[..., 3][BACKDROP].mean() < 30


def test_rgba_input_keeps_its_transparency(tmp_path, portrait, matter):
    bgra = cv2.cvtColor(portrait, cv2.COLOR_RGB2BGRA)
    bgra[:, :40, 3] = 0  # the file's own cut-out
    cv2.imwrite(str(tmp_path / "cut.png"), bgra)
    picture = read_image(tmp_path / "cut.png")
    assert picture.alpha is not None and picture.rgb.shape == (SIZE, SIZE, 3)
    assert (picture.rgb[:, :40] == 255).all()  # flattened over white for the network
    alpha = load(matte_image(tmp_path / "cut.png", engine=matter))[..., 3]
    assert alpha[:, :40].max() == 0
    assert alpha[100:150, 45:80].mean() > 200


def test_palette_png(tmp_path, portrait, matter):
    levels = np.array([0, 51, 102, 153, 204, 255])
    q = np.round(portrait / 51).astype(np.uint8)  # 6x6x6 colour cube
    indices = (q[..., 0] * 36 + q[..., 1] * 6 + q[..., 2]).astype(np.uint8)
    palette = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    (tmp_path / "pal.png").write_bytes(palette_png(indices, palette))
    picture = read_image(tmp_path / "pal.png")
    np.testing.assert_array_equal(picture.rgb, palette[indices])
    rgba = load(matte_image(tmp_path / "pal.png", engine=matter))
    assert rgba.shape == (SIZE, SIZE, 4) and rgba[..., 3][BODY].mean() > 200


def test_palette_png_with_transparent_entries(tmp_path):
    indices = np.zeros((8, 8), np.uint8)
    indices[:, 4:] = 1
    data = palette_png(indices, np.array([[255, 0, 0], [0, 0, 255]]), transparency=np.array([0, 255]))
    (tmp_path / "t.png").write_bytes(data)
    picture = read_image(tmp_path / "t.png")
    assert picture.alpha is not None
    assert (picture.alpha[:, :4] == 0).all() and (picture.alpha[:, 4:] == 255).all()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_viewers_do(tmp_path, orientation):
    # an asymmetric picture: any wrong flip or turn changes pixels
    rng = np.random.default_rng(orientation)
    rgb = cv2.resize(rng.integers(0, 256, (6, 10, 3), dtype=np.uint8), (40, 24), interpolation=cv2.INTER_NEAREST)
    path = tmp_path / "o.jpg"
    path.write_bytes(jpeg_with_orientation(rgb, orientation, big_endian=orientation % 2 == 0))
    upright = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)  # OpenCV applies EXIF
    np.testing.assert_array_equal(read_image(path).rgb, upright)
    assert read_image(path).rgb.shape[:2] == ((24, 40) if orientation <= 4 else (40, 24))


def test_rotated_camera_photo_is_matted_upright(tmp_path, portrait, matter):
    upright = np.ascontiguousarray(portrait[:, 20:140])  # 160 x 120, portrait format
    stored = np.rot90(upright, 1)  # as a sideways camera stores it; orientation 6 turns it back
    (tmp_path / "cam.jpg").write_bytes(jpeg_with_orientation(np.ascontiguousarray(stored), 6))
    save_rgb(tmp_path / "up.jpg", upright)
    rotated = load(matte_image(tmp_path / "cam.jpg", engine=matter))[..., 3]
    direct = load(matte_image(tmp_path / "up.jpg", engine=matter))[..., 3]
    assert rotated.shape == (160, 120)
    assert np.abs(rotated.astype(int) - direct.astype(int)).mean() < 6


def test_cmyk_jpeg(tmp_path, matter, portrait):
    mosaic = cv2.resize(portrait, (SIZE // 8, SIZE // 8), interpolation=cv2.INTER_AREA).astype(float)
    k = 255 - mosaic.max(axis=2)
    ink = np.zeros(mosaic.shape[:2] + (4,))
    scale = np.where(k < 255, 255 / np.maximum(255 - k, 1), 0)
    ink[..., :3] = (255 - mosaic - k[..., None]) * scale[..., None]
    ink[..., 3] = k
    (tmp_path / "cmyk.jpg").write_bytes(cmyk_jpeg(np.round(255 - ink).astype(np.uint8)))  # Adobe: inverted
    picture = read_image(tmp_path / "cmyk.jpg")
    expected = np.repeat(np.repeat(mosaic, 8, 0), 8, 1)
    assert picture.rgb.shape == (SIZE, SIZE, 3)
    assert np.abs(picture.rgb - expected).mean() < 3
    rgba = load(matte_image(tmp_path / "cmyk.jpg", engine=matter))
    assert rgba.shape == (SIZE, SIZE, 4)


def test_existing_output_needs_overwrite(tmp_path, portrait, matter):
    source = save_rgb(tmp_path / "p.png", portrait)
    out = tmp_path / "p_matte.png"
    out.write_bytes(b"old")
    with pytest.raises(OutputError, match="exists"):
        matte_image(source, engine=matter)
    assert out.read_bytes() == b"old"
    matte_image(source, engine=matter, options=MatteOptions(overwrite=True))
    assert load(out).shape == (SIZE, SIZE, 4)
    assert no_leftovers(tmp_path)


def test_failed_write_leaves_nothing(tmp_path, portrait, matter, monkeypatch):
    source = save_rgb(tmp_path / "p.png", portrait)

    def disk_full(data, temp):
        temp.write_bytes(data[: len(data) // 2])  # half written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(imagefile, "_store", disk_full)
    with pytest.raises(OutputError, match="disk full"):
        matte_image(source, tmp_path / "out.png", engine=matter)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


def test_damaged_or_missing_input_is_a_clear_error(tmp_path, matter):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError, match="not an image vidmatte can read"):
        matte_image(tmp_path / "bad.png", engine=matter)
    with pytest.raises(InputError, match="does not exist"):
        matte_image(tmp_path / "gone.jpg", engine=matter)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_image(tmp_path / "empty.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "empty.jpg"]


def test_too_large_picture_stops_with_a_clear_message(tmp_path, portrait, monkeypatch):
    source = save_rgb(tmp_path / "p.png", portrait)
    monkeypatch.setattr(imagefile, "MAX_PIXELS", 10_000)
    with pytest.raises(InputError, match=r"160x160 .* downscale it first"):
        read_image(source)


def test_output_forms_are_checked_before_the_work(tmp_path, portrait):
    source = save_rgb(tmp_path / "p.png", portrait)
    with pytest.raises(OutputError, match="cannot carry alpha"):
        matte_image(source, tmp_path / "x.jpg", options=MatteOptions(output_type="rgba"))
    with pytest.raises(OutputError, match="cannot carry alpha"):
        matte_image(source, tmp_path / "x.tif", options=MatteOptions(output_type="rgba"))
    with pytest.raises(OutputError, match=r"extension '\.gif'"):
        matte_image(source, tmp_path / "x.gif")
    assert is_image_path("a/B.JPG") and is_image_path("x.tiff") and not is_image_path("clip.mp4")


def test_exif_parser_handles_both_byte_orders_and_junk():
    from tests.image_files import exif_block

    assert exif_orientation(exif_block(6)) == 6
    assert exif_orientation(exif_block(8, big_endian=True)) == 8
    assert exif_orientation(b"junk") == 1
    assert exif_orientation(exif_block(6)[:12]) == 1  # cut short


# --- still mode -------------------------------------------------------------------------------


def test_still_scale():
    assert still_scale(300, 300) == 1.0  # not enlarged...
    assert still_scale(128, 64) == 2.0  # ...unless tiny: the network's longest side is at least 256
    s = still_scale(1940, 1280)
    assert (1940 * s) * (1280 * s) == pytest.approx(STILL_PIXELS)  # aspect kept, a fixed pixel budget
    assert still_scale(8000, 8000, pixels=400_000) * 8000 == pytest.approx(632.5, abs=0.1)


def test_converging_reduces_the_change_between_passes(portrait, matter):
    small = network_input(portrait, 1.0, matter.device, matter.dtype)
    changes = [converge_coarse(matter, small, n, tol=0)[2] for n in (2, 4, 12)]
    assert changes[0] > 0.1  # the second pass still moves alpha a lot...
    assert changes[2] < changes[1] < changes[0]  # ...and it settles
    _coarse, passes, change = converge_coarse(matter, small, 30, tol=changes[1])
    assert 2 < passes < 30 and change < changes[1]
    assert converge_coarse(matter, small, 3, tol=0)[1] == 3  # the bound holds


def test_single_pass_still_is_the_video_frame_result(sample_rgb, matter):
    picture = cv2.resize(sample_rgb, (256, 256), interpolation=cv2.INTER_AREA)  # network at its own size
    frame = MattingEngine(device="cpu", precision=matter.precision, model=matter.model)(picture)
    still = matte_still(matter, picture, max_passes=1)
    assert still.passes == 1 and still.scale == 1.0
    np.testing.assert_allclose(still.alpha, frame.alpha[0, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(still.foreground, frame.foreground[0].permute(1, 2, 0).numpy(), atol=1e-5)


def test_converged_alpha_differs_from_the_first_pass(portrait, matter):
    first = matte_still(matter, portrait, max_passes=1).alpha
    settled = matte_still(matter, portrait)
    assert settled.passes > 1
    assert np.abs(settled.alpha - first).max() > 0.1
    # the plain `converge` keeps the engine's own state untouched
    matter.reset()
    converged = converge(matter, portrait)
    assert matter.state[0] is None and converged.alpha.shape == (1, 1, SIZE, SIZE)


def test_strip_refinement_equals_the_network_refiner(portrait, matter):
    rgb = np.ascontiguousarray(portrait[:, :151])  # odd width
    with torch.inference_mode():
        small = network_input(rgb, 0.5, matter.device, matter.dtype)
        coarse, _, _ = converge_coarse(matter, small, 2, tol=0)
        fgr, pha = matter.model.refine(Coarse(matter.to_tensor(rgb), small, coarse.y, coarse.hid, None))
        ab = matter.guided_coefficients(coarse)
        alpha, foreground = refine_in_strips(ab, rgb, strip_pixels=151 * 7)
    np.testing.assert_allclose(alpha, pha[0, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(foreground, fgr[0].permute(1, 2, 0).numpy(), atol=1e-5)


def test_flip_averaging_runs_both_ways(portrait, matter):
    one = matte_still(matter, portrait, max_passes=4, tol=0)
    both = matte_still(matter, portrait, max_passes=4, tol=0, flip=True)
    assert both.passes == 8
    assert 0 < np.abs(both.alpha - one.alpha).mean() < 0.05


def test_edge_refinement_changes_only_the_edge_band(tmp_path, portrait, matter):
    source = save_rgb(tmp_path / "p.png", portrait)
    refined = load(matte_image(source, tmp_path / "r.png", engine=matter, options=MatteOptions(passes=3)))[
        ..., 3
    ].astype(int)
    plain = load(matte_image(source, tmp_path / "n.png", engine=matter, options=MatteOptions(passes=3, refine=False)))[
        ..., 3
    ].astype(int)
    changed = np.abs(refined - plain) > 2
    assert changed.any()
    solid = (plain == 255) | (plain == 0)
    edge = ~(cv2.erode(solid.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool))  # 4 px around any soft pixel
    assert not (changed & ~edge).any()  # confident regions away from the edges are untouched


def test_still_mode_reports_passes_and_rows(matter, portrait):
    calls = []
    matte_still(matter, portrait, max_passes=3, tol=0, progress=lambda p: calls.append((p.task, p.done, p.total)))
    assert [c for c in calls if c[0] == "passes"] == [("passes", 1, 3), ("passes", 2, 3), ("passes", 3, 3)]
    rows = [c for c in calls if c[0] == "full resolution"]
    assert rows and rows[-1] == ("full resolution", SIZE, SIZE)


def test_still_mode_runs_fp32_where_auto_chose_mixed_precision(monkeypatch, matter, portrait):
    """Its repeated passes could settle elsewhere on bf16 roundings: an automatic choice of mixed
    precision is set aside for stills (the same pictures as fp32), a mixed one asked for is kept."""
    import vidmatte.engine as engine_module
    from vidmatte.stills import still_engine

    monkeypatch.setattr(engine_module, "cpu_has_native_bf16", lambda: True)
    auto = MattingEngine(device="cpu", model=matter.model)
    assert auto.precision == "mixed" and auto.model.conv_operands == torch.bfloat16
    chosen = still_engine(auto)
    assert chosen.precision == "fp32" and chosen.model.conv_operands is None
    assert auto.model.conv_operands == torch.bfloat16  # the video engine keeps its precision
    assert np.array_equal(matte_still(auto, portrait).alpha, matte_still(matter, portrait).alpha)
    asked = MattingEngine(device="cpu", precision="mixed", model=auto.model)
    assert still_engine(asked) is asked
