"""Frame-accurate range reads against the sequential oracle, on every codec."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import sequential_frames
from mocapflow.video import VideoError, probe, read_frames, read_range


def chunked(path, chunk: int) -> np.ndarray:
    info = probe(path)
    parts = [read_frames(path, a, a + chunk, info=info) for a in range(0, info.n_frames, chunk)]
    return np.concatenate(parts)


@pytest.mark.parametrize("codec", ["mp4v", "mjpg", "vp9", "h264"])
@pytest.mark.parametrize("chunk", [1, 7, 61, 10_000])
def test_chunked_equals_sequential(codec_videos, codec, chunk):
    path = codec_videos[codec]
    oracle = sequential_frames(path)
    got = chunked(path, chunk)
    assert got.shape == oracle.shape
    for i, (a, b) in enumerate(zip(got, oracle, strict=True)):
        assert np.array_equal(a, b), f"{codec} chunk {chunk}: frame {i} differs"


def test_h264_has_bframes_and_long_gop(codec_videos):
    import av

    info = probe(codec_videos["h264"])
    assert info.codec == "h264" and info.n_frames == 200
    assert list(info.keyframes) == [0, 150]
    with av.open(str(codec_videos["h264"])) as c:
        assert c.streams.video[0].codec_context.has_b_frames


def test_probe_counts_frames_when_container_does_not(codec_videos):
    info = probe(codec_videos["vp9"])  # WebM stores no frame count
    assert info.reported_frames == 0
    assert info.n_frames == 200 == len(sequential_frames(codec_videos["vp9"]))
    assert (info.width, info.height, round(info.fps)) == (160, 120, 30)


_CAMS = ["cam01.mp4", "cam02.mp4", "cam03.mp4", "cam04.mp4"]


@pytest.mark.parametrize(
    ("name", "chunk"),
    [
        # Every chunk size on cam01 and 33-frame chunks on every view by default;
        # the other views at 7 and 1000 frames with the slow tests (make test-all).
        pytest.param(n, c, marks=[pytest.mark.slow] if n != "cam01.mp4" and c != 33 else [])
        for n in _CAMS
        for c in (7, 33, 1000)
    ],
)
def test_fixture_chunked_equals_sequential(pose2sim, name, chunk):
    path = pose2sim / name
    oracle = sequential_frames(path)
    got = chunked(path, chunk)
    assert got.shape == oracle.shape
    assert all(np.array_equal(a, b) for a, b in zip(got, oracle, strict=True))


@pytest.mark.parametrize("name", ["cam01.mp4", "cam02.mp4", "cam03.mp4", "cam04.mp4"])
def test_fixture_single_frames(pose2sim, name):
    """Chunks of 1 at scattered frames (every frame is in the slow suite)."""
    path = pose2sim / name
    oracle = sequential_frames(path)
    info = probe(path)
    for i in (0, 1, 2, 37, 50, 98, 99):
        assert np.array_equal(read_frames(path, i, i + 1, info=info)[0], oracle[i]), i


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cam01.mp4", "cam02.mp4", "cam03.mp4", "cam04.mp4"])
def test_fixture_every_single_frame(pose2sim, name):
    path = pose2sim / name
    assert np.array_equal(chunked(path, 1), sequential_frames(path))


def test_fixture_probe(pose2sim):
    infos = {p.name: probe(p) for p in sorted(pose2sim.glob("*.mp4"))}
    assert {i.n_frames for i in infos.values()} == {100}
    assert infos["cam02.mp4"].codec == "vp9" and infos["cam01.mp4"].codec == "h264"
    assert (infos["cam01.mp4"].width, infos["cam03.mp4"].width) == (1080, 1088)


def test_read_frames_clips_stop_and_rejects_bad_ranges(codec_videos):
    path = codec_videos["mjpg"]
    assert len(read_frames(path, 195, 500)) == 5
    assert len(read_frames(path, 300, 400)) == 0
    with pytest.raises(ValueError):
        read_frames(path, 5, 2)


def test_truncated_read_returns_what_decodes(codec_videos, tmp_path):
    data = codec_videos["mjpg"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    info = probe(cut)
    frames = read_range(cut, 0, 200, int(info.pts[0]), int(info.pts[0]))
    assert 0 < len(frames) < 200
    assert np.array_equal(frames, sequential_frames(codec_videos["mjpg"])[: len(frames)])


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"this is not a video\n" * 50, "not a readable video")],
)
def test_unreadable_files_raise_one_line(tmp_path, content, message):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(VideoError, match=message) as err:
        probe(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("degrees", [90, 180, -90])
def test_rotated_videos_read_as_cv2_shows_them(tmp_path, degrees):
    """A container that asks players to rotate: frames as cv2.VideoCapture returns them."""
    import av

    from conftest import moving_pattern, sequential_frames

    path = tmp_path / f"rot{degrees}.mp4"
    frames = moving_pattern(12, size=(96, 64))
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
    stream.set_display_rotation(degrees)
    for f in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="bgr24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    oracle = sequential_frames(path)
    info = probe(path)
    assert (info.height, info.width) == oracle.shape[1:3]
    assert info.rotation == degrees % 360
    np.testing.assert_array_equal(read_frames(path, 0, 12, info=info), oracle)
    np.testing.assert_array_equal(read_frames(path, 5, 9, info=info), oracle[5:9])
    # Gray from the luma plane is turned alike: the BGR frames' own luma, rounding apart.
    import cv2

    gray = read_frames(path, 0, 12, info=info, pixel_format="gray")
    assert gray.shape == oracle.shape[:3]
    luma = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in oracle])
    assert np.median(np.abs(gray.astype(int) - luma)) <= 2


def _swscale_gray(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray") for f in container.decode(video=0)]


@pytest.mark.parametrize("codec", ["h264", "mp4v", "mjpg", "vp9"])
def test_gray_from_the_luma_plane_equals_swscale(codec_videos, codec):
    """The luma-plane path gives swscale's gray exactly (MJPEG's full range included)."""
    path = codec_videos[codec]
    want = _swscale_gray(path)
    got = read_frames(path, 0, len(want), pixel_format="gray")
    assert got.shape == (len(want), *want[0].shape)
    for i, frame in enumerate(want):
        np.testing.assert_array_equal(got[i], frame, err_msg=f"{codec} frame {i}")


def test_gray_from_the_luma_plane_on_the_real_sample(pose2sim):
    path = pose2sim / "cam01.mp4"
    want = _swscale_gray(path)[:12]
    np.testing.assert_array_equal(read_frames(path, 0, 12, pixel_format="gray"), np.stack(want))


@pytest.mark.parametrize("color_range", [0, 1, 2])
def test_luma_table_is_swscales_mapping(color_range):
    from mocapflow.video import luma_table

    table = luma_table("yuv420p", color_range)
    if color_range == 2:  # full range: kept
        np.testing.assert_array_equal(table, np.arange(256))
    else:  # limited range: 16..235 stretched to 0..255
        assert table[16] == 0 and table[235] == 255 and table[126] == 128
        assert np.all(np.diff(table.astype(int)) >= 0)


def test_gray_of_bt709_video_is_its_luma(tmp_path):
    """BT.709-tagged video (most HD cameras): gray is the luma that its BGR frames show
    (0.2126 R + 0.7152 G + 0.0722 B, within a level); FFmpeg 8's swscale goes through
    RGB with other weights there (measured: up to 33 levels off on saturated colours)."""
    import av

    path = tmp_path / "bt709.mp4"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
    stream.codec_context.colorspace = stream.codec_context.color_primaries = 1  # BT.709
    stream.codec_context.color_trc = 1
    image = np.zeros((64, 96, 3), np.uint8)
    image[:, :32], image[:, 32:64], image[:, 64:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    image[:16] = 128
    for _ in range(4):
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        for packet in stream.encode(frame.reformat(format="yuv420p", dst_colorspace=1)):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    with av.open(str(path)) as c:
        assert next(c.decode(video=0)).colorspace == 1
    gray = read_frames(path, 0, 4, pixel_format="gray").astype(float)
    bgr = read_frames(path, 0, 4).astype(float)
    luma = 0.0722 * bgr[..., 0] + 0.7152 * bgr[..., 1] + 0.2126 * bgr[..., 2]
    assert np.abs(gray - luma).max() <= 1.5


def test_opencv_colour_conversion_writes_the_frames_as_closely(pose2sim, tmp_path):
    """``opencv_colour``: frames go to the encoder as OpenCV's BT.601 YUV, and read back at
    least as close to the source as through FFmpeg's own conversion (measured 1.4 against
    2.2 levels mean on the sample's frames, at CRF 16)."""
    from mocapflow.video import VideoWriter

    frames = read_frames(pose2sim / "cam02.mp4", 0, 8)  # 1080 wide: even, as 4:2:0 needs
    errors = {}
    for opencv in (False, True):
        out = tmp_path / f"{opencv}.mp4"
        with VideoWriter(out, 30, "h264", opencv_colour=opencv) as w:
            for f in frames:
                w.write(f)
        back = read_frames(out, 0, 8)
        assert back.shape == frames.shape
        errors[opencv] = float(np.abs(back.astype(int) - frames).mean())
    assert errors[True] <= errors[False] + 0.1, errors
    assert errors[True] < 3.0, errors
