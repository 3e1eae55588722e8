"""Probe videos and read exact frame ranges.

Frames are decoded with PyAV and converted to BGR by FFmpeg's swscale, which
gives pixel-identical frames to ``cv2.VideoCapture``'s sequential read; a
video whose container asks players to rotate it is turned as OpenCV turns it.
Gray frames are the decoder's luma stretched to full range: for 8-bit planar
YUV, the luma plane through swscale's own 256-value range mapping (a table
look-up). On untagged and BT.601 video that is exactly swscale's gray, at a
fraction of its cost; on BT.709-tagged video FFmpeg 8's swscale computes gray
from RGB instead, which differs on saturated colours, and mocapflow keeps the
luma there too, so a gray frame means the same thing whatever the tag.

A range read seeks to the keyframe at or before the first wanted frame and
decodes forward, keeping frames by presentation timestamp. The timestamps of
every frame come from one cheap demux pass (no decoding) at probe time, which
also gives the true frame count (containers often report none, or a wrong one)
and the keyframe positions that the chunk planner aligns tasks with.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import UsageError, VideoError

__all__ = [
    "VideoError",
    "VideoInfo",
    "probe",
    "read_frames",
    "read_range",
    "iter_range",
    "decode_threads",
    "VideoWriter",
    "CODECS",
]

logger = logging.getLogger(__name__)

#: Environment variable that fixes the number of decoder threads (0 = FFmpeg's choice).
THREADS_ENV = "MOCAPFLOW_DECODE_THREADS"


@dataclass(frozen=True)
class VideoInfo:
    """What one demux pass tells about a video.

    Attributes
    ----------
    path : str
        The video file.
    n_frames : int
        Frames found by demuxing (not the container's claim).
    fps : float
        Average frame rate.
    width, height : int
        Frame size in pixels, as displayed (after the rotation).
    codec : str
        FFmpeg codec name, e.g. ``"h264"``.
    pts : numpy.ndarray
        Presentation timestamp of every frame, in presentation order.
    keyframes : numpy.ndarray
        Indices of the keyframes (frames a decoder can start from).
    reported_frames : int
        The frame count the container claims (0 when it claims none).
    expected_frames : int
        The frames the video should hold: the index's count for MP4/MOV.
    rotation : int
        Display rotation, counter-clockwise degrees; frames are turned by it.

    """

    path: str
    n_frames: int
    fps: float
    width: int
    height: int
    codec: str
    pts: np.ndarray = field(repr=False, compare=False)
    keyframes: np.ndarray = field(repr=False, compare=False)
    reported_frames: int = 0
    expected_frames: int = 0
    rotation: int = 0

    @property
    def truncated(self) -> bool:
        """Whether the file holds fewer frames than its index lists."""
        return self.expected_frames > self.n_frames

    def keyframe_before(self, index: int) -> int:
        """Return the index of the last keyframe at or before frame ``index``."""
        pos = int(np.searchsorted(self.keyframes, index, side="right")) - 1
        return int(self.keyframes[max(pos, 0)])

    def metadata(self) -> dict:
        """Return the JSON-serialisable facts about this video."""
        return {
            "path": self.path,
            "n_frames": self.n_frames,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "reported_frames": self.reported_frames,
            "expected_frames": self.expected_frames,
            "rotation": self.rotation,
        }


def decode_threads() -> int:
    """Return the decoder thread count from ``MOCAPFLOW_DECODE_THREADS`` (0: automatic)."""
    try:
        return max(0, int(os.environ.get(THREADS_ENV, "0")))
    except ValueError:
        return 0


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        if p.is_symlink():
            raise VideoError(
                f"{p}: a link to {os.readlink(p)}, which does not exist; "
                "mount or copy the video, or remove the link"
            )
        raise VideoError(f"{p}: no such file; check the path")
    if p.is_file() and p.stat().st_size == 0:
        raise VideoError(f"{p}: the file is empty (0 bytes); re-export or remove it")
    if not os.access(p, os.R_OK):
        raise VideoError(f"{p}: permission denied; make it readable (chmod a+r) or remove it")
    try:
        container = av.open(str(p), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(
            f"{p}: not a readable video ({exc.__class__.__name__}: {exc}); "
            "re-export it or remove it from the recording"
        ) from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{p}: the file has no video stream; remove it from the recording")
    return container


def probe(path: str | os.PathLike) -> VideoInfo:
    """Probe a video: size, codec, rate, and every frame's timestamp by demuxing.

    Parameters
    ----------
    path : str or os.PathLike
        The video file.

    Returns
    -------
    VideoInfo
        The facts about the video.

    Raises
    ------
    VideoError
        If the file cannot be opened or holds no frames.

    """
    path = str(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        pts_list: list[int] = []
        key_pts: list[int] = []
        n_none = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is None:
                    n_none += 1
                    continue
                pts_list.append(ts)
                if packet.is_keyframe:
                    key_pts.append(ts)
        except av.error.FFmpegError as exc:
            logger.warning("%s: demuxing stopped early (%s)", path, exc)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        info_fps = float(rate) if rate else 0.0
        width, height, codec = int(ctx.width), int(ctx.height), str(ctx.name)
        reported = int(stream.frames or 0)
        indexed = bool({"mov", "mp4"} & set(container.format.name.split(",")))
        rotation = _rotation_of(container, stream)
        if rotation in (90, 270):
            width, height = height, width  # as displayed, and as cv2.VideoCapture returns it
    finally:
        container.close()
    if n_none:
        raise VideoError(
            f"{path}: {n_none} packets carry no timestamp, so frames cannot be located; "
            "remux it (ffmpeg -i IN -c copy OUT.mkv)"
        )
    if not pts_list:
        raise VideoError(f"{path}: the video holds no frames; re-export it or remove it")
    pts = np.array(sorted(set(pts_list)), dtype=np.int64)
    keyframes = np.searchsorted(pts, np.array(sorted(set(key_pts)), dtype=np.int64))
    if keyframes.size == 0 or keyframes[0] != 0:
        # A stream must be decodable from its start; treat frame 0 as a restart point.
        keyframes = np.concatenate([[0], keyframes]).astype(np.int64)
    if reported and reported != len(pts):
        logger.info("%s: container reports %d frames, demuxing finds %d", path, reported, len(pts))
    return VideoInfo(
        path=path,
        n_frames=len(pts),
        fps=info_fps,
        width=width,
        height=height,
        codec=codec,
        pts=pts,
        keyframes=keyframes.astype(np.int64),
        reported_frames=reported,
        expected_frames=max(len(pts), reported) if indexed else len(pts),
        rotation=rotation,
    )


#: A frame's display rotation (counter-clockwise degrees) -> the turn cv2.VideoCapture applies.
_TURNS = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


def _rotation_of(container, stream) -> int:
    """Return the display rotation players apply to a video (0, 90, 180 or 270)."""
    container.seek(0, stream=stream)
    try:
        frame = next(container.decode(stream))
    except (StopIteration, av.error.FFmpegError):
        return 0
    return int(round(getattr(frame, "rotation", 0) or 0)) % 360


#: 8-bit planar YUV formats whose first plane is the luma that swscale turns into gray.
LUMA_FORMATS = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p"}
)


@functools.cache
def luma_table(pixel_format: str, color_range: int) -> np.ndarray:
    """Return the gray value of each of the 256 luma values of a format and range.

    Measured by converting, with swscale, an untagged frame that holds every
    luma value once, so it is FFmpeg's own range mapping: limited (MPEG) range
    stretched to 0-255, full (JPEG) range kept. The table is read-only (it is
    shared by every thread).
    """
    frame = av.VideoFrame(16, 16, pixel_format)
    frame.color_range = color_range
    for i, plane in enumerate(frame.planes):
        values = np.frombuffer(plane, np.uint8)
        values[:] = 128
        if i == 0:
            values.reshape(16, plane.line_size)[:, :16] = np.arange(256).reshape(16, 16)
    table = frame.to_ndarray(format="gray").reshape(256).copy()
    table.flags.writeable = False
    return table


def _luma(frame: av.VideoFrame) -> np.ndarray | None:
    """Return a frame's luma stretched to full range, or None if it has no plain luma plane."""
    if frame.format.name not in LUMA_FORMATS:
        return None
    plane = frame.planes[0]
    if plane.line_size < plane.width:  # a negative stride (a flipped image): leave it to swscale
        return None
    y = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    return cv2.LUT(y, luma_table(frame.format.name, int(frame.color_range)))


def _displayed(frame: av.VideoFrame, pixel_format: str, threads: int = 0) -> np.ndarray:
    """Convert a decoded frame, turned as players (and cv2.VideoCapture) show it.

    ``threads`` is swscale's thread count (0: automatic). A worker converts with
    one, as it decodes with one: automatic threads cost 10-30 % more CPU per frame
    on cores that the other workers already keep busy.
    """
    arr = _luma(frame) if pixel_format == "gray" else None
    if arr is None:
        arr = frame.to_ndarray(format=pixel_format, threads=threads)
    turn = _TURNS.get(int(round(frame.rotation or 0)) % 360)
    return arr if turn is None else cv2.rotate(arr, turn)


def iter_range(
    path: str | os.PathLike,
    start: int,
    stop: int,
    start_pts: int,
    seek_pts: int | None,
    *,
    threads: int | None = None,
    pixel_format: str = "bgr24",
) -> Iterator[np.ndarray]:
    """Yield frames ``start..stop-1`` one at a time, given the first frame's timestamp.

    This is the worker-side reader: the planner already knows the timestamps,
    so nothing is probed here, and only one decoded frame is held at a time.

    Parameters
    ----------
    path : str or os.PathLike
        The video file.
    start, stop : int
        The frame range, in presentation order.
    start_pts : int
        Presentation timestamp of frame ``start``.
    seek_pts : int or None
        Timestamp of a keyframe at or before ``start`` to seek to; ``None``
        decodes from the beginning.
    threads : int, optional
        Decoder threads; default from :func:`decode_threads`.
    pixel_format : str
        ``"bgr24"`` (as ``cv2.VideoCapture`` gives) or ``"rgb24"``, converted
        by FFmpeg's swscale, or ``"gray"``: the luma, full range (see the
        module's notes).

    Yields
    ------
    numpy.ndarray
        ``uint8`` frames shaped ``(height, width, 3)``, or ``(height, width)``
        for ``"gray"``.

    Raises
    ------
    VideoError
        If the file cannot be opened, or decoding fails part-way (after the
        frames decoded so far were yielded).

    """
    want = stop - start
    if want <= 0:
        raise UsageError(f"empty frame range {start}:{stop}")
    container = _open(path)
    n = 0
    try:
        stream = container.streams.video[0]
        n_threads = decode_threads() if threads is None else threads
        if n_threads:
            stream.codec_context.thread_count = n_threads
            stream.thread_type = "AUTO" if n_threads > 1 else "SLICE"
        if seek_pts is not None and start > 0:
            container.seek(int(seek_pts), stream=stream, backward=True, any_frame=False)
        first = True
        try:
            for frame in container.decode(stream):
                ts = frame.pts if frame.pts is not None else frame.dts
                if first and seek_pts is not None and ts is not None and ts > start_pts:
                    # The demuxer overshot (a sparse or wrong index): start over from the top.
                    logger.debug("%s: seek overshot frame %d; decoding from the start", path, start)
                    container.seek(0, stream=stream, backward=True, any_frame=False)
                    seek_pts = None
                    continue
                first = False
                if ts is None or ts < start_pts:
                    continue
                yield _displayed(frame, pixel_format, n_threads)
                n += 1
                if n == want:
                    return
        except av.error.FFmpegError as exc:
            raise VideoError(
                f"{path}: decoding failed after {n} of frames {start}:{stop} ({exc}); "
                "the file is corrupt, re-export it"
            ) from None
    finally:
        container.close()


def read_range(
    path: str | os.PathLike,
    start: int,
    stop: int,
    start_pts: int,
    seek_pts: int | None,
    *,
    threads: int | None = None,
    pixel_format: str = "bgr24",
) -> np.ndarray:
    """Decode frames ``start..stop-1`` into one array (see :func:`iter_range`).

    Returns
    -------
    numpy.ndarray
        ``uint8`` array shaped ``(n, height, width, 3)``, BGR; ``n < stop - start``
        when the stream ends early or is corrupt part-way.

    """
    frames: list[np.ndarray] = []
    try:
        for frame in iter_range(
            path, start, stop, start_pts, seek_pts, threads=threads, pixel_format=pixel_format
        ):
            frames.append(frame)
    except VideoError as exc:
        if not frames:
            raise
        logger.warning("%s", exc)
    if not frames:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return np.stack(frames)


def read_frames(
    path: str | os.PathLike,
    start: int,
    stop: int,
    *,
    info: VideoInfo | None = None,
    threads: int | None = None,
    pixel_format: str = "bgr24",
) -> np.ndarray:
    """Return exactly frames ``start..stop-1`` as a sequential read decodes them.

    Parameters
    ----------
    path : str or os.PathLike
        The video file.
    start, stop : int
        The frame range; ``stop`` is clipped to the video's length.
    info : VideoInfo, optional
        A probe of the file, to skip probing it again.
    threads : int, optional
        Decoder threads (0: FFmpeg's choice).
    pixel_format : str
        ``"bgr24"`` or ``"rgb24"``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array shaped ``(stop - start, height, width, 3)``.

    Raises
    ------
    VideoError
        If the file cannot be read or decodes fewer frames than it holds.

    """
    info = info or probe(path)
    if start < 0 or stop < start:
        raise UsageError(f"invalid frame range {start}:{stop}")
    stop = min(stop, info.n_frames)
    if start >= stop:
        return np.zeros((0, info.height, info.width, 3), dtype=np.uint8)
    key = info.keyframe_before(start)
    frames = read_range(
        path,
        start,
        stop,
        int(info.pts[start]),
        int(info.pts[key]),
        threads=threads,
        pixel_format=pixel_format,
    )
    if len(frames) != stop - start:
        raise VideoError(
            f"{path}: decoded {len(frames)} of frames {start}:{stop}; the file is truncated "
            "or corrupt, re-export it"
        )
    return frames


#: Codec name -> (FFmpeg encoder, container suffix, pixel format, encoder options).
CODECS: dict[str, tuple[str, str, str, dict]] = {
    "h264": ("libx264", ".mp4", "yuv420p", {"crf": "16", "bf": "2", "preset": "veryfast"}),
    "mp4v": ("mpeg4", ".mp4", "yuv420p", {"qscale": "2"}),
    "mjpg": ("mjpeg", ".avi", "yuvj420p", {"q:v": "2"}),
    "vp9": ("libvpx-vp9", ".webm", "yuv420p", {"crf": "20", "b:v": "0", "deadline": "realtime"}),
}


class VideoWriter:
    """Write BGR frames to a video with PyAV (H.264 with B-frames, MPEG-4, MJPEG or VP9).

    Parameters
    ----------
    path : str or os.PathLike
        The file; its suffix should match the codec's container.
    fps : float
        Frame rate.
    codec : str
        One of :data:`CODECS`.
    gop : int
        Keyframe interval for inter-frame codecs.

    Examples
    --------
    >>> with VideoWriter("cam1.mp4", 30, "h264") as w:  # doctest: +SKIP
    ...     w.write(frame)

    """

    def __init__(self, path: str | os.PathLike, fps: float, codec: str = "h264", gop: int = 120):
        if codec not in CODECS:
            raise UsageError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
        encoder, _, pix_fmt, options = CODECS[codec]
        # MP4 index first (faststart): a file cut short still opens and decodes up to the cut.
        faststart = str(path).lower().endswith((".mp4", ".mov"))
        self._container = av.open(
            str(path), mode="w", options={"movflags": "+faststart"} if faststart else {}
        )

        self._stream = self._container.add_stream(
            encoder, rate=Fraction(fps).limit_denominator(1001)
        )
        self._stream.pix_fmt = pix_fmt
        opts = dict(options)
        if codec != "mjpg":  # intra-only: every frame is a keyframe
            opts["g"] = str(gop)
        if codec == "h264":  # keyframes exactly every `gop` frames, no scene-cut extras
            opts.update(keyint_min=str(gop), sc_threshold="0")
        self._stream.options = opts
        self._sized = False

    def write(self, frame: np.ndarray) -> None:
        """Encode one ``uint8`` BGR frame shaped ``(height, width, 3)``."""
        if not self._sized:
            self._stream.height, self._stream.width = frame.shape[:2]
            self._sized = True
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and close the file."""
        if self._sized:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
