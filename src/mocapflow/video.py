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

Frame ``i`` is the ``i``-th frame that a plain sequential decode of the whole
file yields, whatever the chunking. Each decoded frame gets an order key: its
timestamp, or one past the previous frame's key where the timestamp is missing
or not above it (a duplicate). A range read seeks to a restart point (a
keyframe) at or before the first wanted frame, finds that keyframe's frame by
its timestamp, and keys the frames from there on by the same rule, so it keeps
exactly the frames a sequential read numbers ``start..stop-1``.

The keys of every frame come from one cheap demux pass (no decoding) at probe
time, which also gives the true frame count (containers often report none, or
a wrong one) and the keyframe positions that the chunk planner aligns tasks
with. Only where the demux pass shows that packets and decoded frames may not
match one to one (a file cut mid-GOP, whose leading packets cannot be decoded;
duplicate timestamps; packets an edit list discards; an AVI whose timestamps
are in decoding order) does probe decode, and then only the packets between
the clean keyframes around each such spot.
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
        Order key of every frame, in presentation order: its presentation
        timestamp, except where timestamps repeat or are missing (see the
        module's notes). Strictly increasing.
    keyframes : numpy.ndarray
        Indices of the keyframes (frames a decoder can start from, and a range
        read can find again by timestamp); frame 0 is always one.
    reported_frames : int
        The frame count the container claims (0 when it claims none).
    expected_frames : int
        The frames the video should hold: for MP4/MOV, the frames plus the
        packets its index lists that the file lacks.
    rotation : int
        Display rotation, counter-clockwise degrees; frames are turned by it.
    undecodable : int
        Packets that decode to no frame, e.g. the leading packets of a video
        cut mid-GOP, whose reference frames are missing. They are not frames:
        neither counted in ``n_frames`` nor missing from it.
    time_base : fractions.Fraction
        Seconds per unit of ``pts`` (0 when the stream gives none).

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
    undecodable: int = 0
    time_base: Fraction = Fraction(0)

    @property
    def truncated(self) -> bool:
        """Whether the file holds fewer frames than its index lists."""
        return self.expected_frames > self.n_frames

    @property
    def times(self) -> np.ndarray:
        """Return each frame's time in seconds from the first frame, from its own timestamp.

        A variable-frame-rate video's frames keep their irregular times; without a
        time base, frame ``i`` is at ``i / fps``.
        """
        if self.time_base and len(self.pts):
            return (self.pts - self.pts[0]) * float(self.time_base)
        return np.arange(self.n_frames) / (self.fps or 1.0)

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
            "undecodable": self.undecodable,
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


def _timestamp(frame: av.VideoFrame) -> int | None:
    """Return a decoded frame's timestamp: its pts, else its packet's dts, else None."""
    return frame.pts if frame.pts is not None else frame.dts


def _order_key(ts: int | None, prev: int | None) -> int:
    """Return a frame's order key, given the key of the frame before it (None: the first).

    The key is the frame's timestamp when that is above the previous key, else
    one past the previous key: a duplicate or missing timestamp still gives the
    frame a place of its own, just after the frame it follows.
    """
    if ts is not None and (prev is None or ts > prev):
        return ts
    return 0 if prev is None else prev + 1


@dataclass
class _Packets:
    """What the demux pass records of each packet, in decoding order."""

    pts: np.ndarray  # timestamp (pts, else dts)
    key: np.ndarray  # keyframe flag
    discard: np.ndarray  # the container (an edit list) asks the decoder to drop its frame


def _windows(packets: _Packets, reordered: bool) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Find the packet spans whose frames only decoding can tell, and the clean keyframes.

    A clean keyframe (a cut) is a keyframe packet with a timestamp of its own
    that is above every packet's before it and below every packet's after it:
    decoding from it gives, in presentation order, exactly the frames after the
    ones before it. Outside spans that hold a suspect packet (one before the
    first keyframe or presenting before it, a duplicate timestamp, a packet to
    discard), every packet is one frame and the frames are the sorted
    timestamps. Each span runs from the cut before a suspect packet (or the
    start) to the cut after it (or the end).

    Returns
    -------
    windows : list of (int, int)
        The packet spans ``[a, b)`` to decode, in order, not overlapping.
    cuts : numpy.ndarray
        Positions of the clean keyframes.

    """
    pts, key = packets.pts, packets.key
    n = len(pts)
    if reordered:  # timestamps in decoding order: every keyframe is a candidate
        return [(0, n)], np.flatnonzero(key)
    _, inverse, counts = np.unique(pts, return_inverse=True, return_counts=True)
    suspect = (counts[inverse] > 1) | packets.discard
    first_key = int(np.argmax(key)) if key.any() else n
    suspect[:first_key] = True
    if first_key < n:
        suspect[first_key + 1 :] |= pts[first_key + 1 :] < pts[first_key]
    big = np.iinfo(np.int64)
    before = np.concatenate([[big.min], np.maximum.accumulate(pts)[:-1]])
    after = np.concatenate([np.minimum.accumulate(pts[::-1])[::-1][1:], [big.max]])
    cuts = np.flatnonzero(key & ~suspect & (pts > before) & (pts < after))
    bad = np.flatnonzero(suspect)
    at = np.searchsorted(cuts, bad, side="right")
    starts = np.where(at > 0, cuts[np.maximum(at - 1, 0)], 0)
    ends = np.where(at < len(cuts), cuts[np.minimum(at, len(cuts) - 1)], n)
    windows = sorted({(int(a), int(b)) for a, b in zip(starts, ends, strict=True)})
    return windows, cuts


def _decode_windows(path: str, windows: list[tuple[int, int]]) -> list[list[int | None]]:
    """Decode the packets of each span (positions as :func:`probe` counts them).

    Each span is decoded by a decoder that starts at its first packet and is
    drained at its end, as a sequential read decodes it (a span starts at the
    file's start or at a clean keyframe). Returns each decoded frame's
    timestamp, span by span.
    """
    out: list[list[int | None]] = [[] for _ in windows]
    container = _open(path)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        w, pos = 0, 0
        a, b = windows[0]

        def drain() -> None:
            try:
                out[w].extend(_timestamp(f) for f in ctx.decode(None))
            except av.error.FFmpegError as exc:
                logger.debug("%s: draining the decoder failed (%s)", path, exc)
            ctx.flush_buffers()

        try:
            for packet in container.demux(stream):
                if packet.size == 0 or (packet.pts is None and packet.dts is None):
                    continue
                if pos >= a:
                    try:
                        out[w].extend(_timestamp(f) for f in ctx.decode(packet))
                    except av.error.FFmpegError as exc:
                        logger.debug("%s: packet %d does not decode (%s)", path, pos, exc)
                pos += 1
                if pos == b:
                    drain()
                    w += 1
                    if w == len(windows):
                        break
                    a, b = windows[w]
        except av.error.FFmpegError as exc:
            logger.debug("%s: demuxing stopped early (%s)", path, exc)
        if w < len(windows):
            drain()
    finally:
        container.close()
    return out


def _decoded_order(
    path: str, packets: _Packets, reordered: bool
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Order keys and keyframes of a video whose packets may not be its frames one to one.

    Returns the order key of every frame, the keyframe indices, the packets
    that decode to no frame, and how many of those lead the file.
    """
    pts = packets.pts
    windows, cuts = _windows(packets, reordered)
    decoded = _decode_windows(path, windows)
    stamps: list[int | None] = []
    pos = 0
    for (a, b), got in zip(windows, decoded, strict=True):
        stamps.extend(np.sort(pts[pos:a]).tolist())
        stamps.extend(got)
        pos = b
    stamps.extend(np.sort(pts[pos:]).tolist())
    keys = np.empty(len(stamps), np.int64)
    prev = None
    for i, ts in enumerate(stamps):
        prev = keys[i] = _order_key(ts, prev)
    # A keyframe a range read can seek to and find again: a clean cut, whose frame
    # is the only one with its timestamp and is keyed by that timestamp.
    index: dict[int, int] = {}
    seen: set[int] = set()
    for i, ts in enumerate(stamps):
        if ts is None:
            continue
        if ts in seen:
            index.pop(ts, None)
        else:
            seen.add(ts)
            index[ts] = i
    found = {0}
    for c in cuts.tolist():
        i = index.get(int(pts[c]))
        if i is not None and keys[i] == stamps[i] and (i == 0 or stamps[i] > keys[i - 1]):
            found.add(i)
    keyframes = np.array(sorted(found), dtype=np.int64)
    lost = [max(0, b - a - len(got)) for (a, b), got in zip(windows, decoded, strict=True)]
    # Leading packets: those before the first keyframe, or after it but presenting before it.
    key = packets.key
    first = int(np.argmax(key)) if key.any() else len(pts)
    n_lead = first + int(np.sum(pts[first + 1 :] < pts[first])) if first < len(pts) else first
    leading = min(lost[0], n_lead) if windows[0][0] == 0 else 0
    return keys, keyframes, sum(lost), leading


def _demux(path: str) -> tuple[list[int], list[bool], list[int], int, dict]:
    """Demux a video's packets once: timestamps, keyframe and discard flags, stream facts."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        pts_list: list[int] = []
        key_list: list[bool] = []
        discard_at: list[int] = []  # positions of the packets to discard (rare)
        n_none = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is None:
                    n_none += 1
                    continue
                key_list.append(packet.is_keyframe)
                if packet.is_discard:
                    discard_at.append(len(pts_list))
                pts_list.append(ts)
        except av.error.FFmpegError as exc:
            logger.warning("%s: demuxing stopped early (%s)", path, exc)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        formats = set(container.format.name.split(","))
        facts = {
            "fps": float(rate) if rate else 0.0,
            "width": int(ctx.width),
            "height": int(ctx.height),
            "codec": str(ctx.name),
            "reported": int(stream.frames or 0),
            "indexed": bool({"mov", "mp4"} & formats),
            # AVI stores no presentation times: with frame reordering its timestamps are
            # in decoding order, and only decoding tells the presentation order.
            "reorders": "avi" in formats and bool(ctx.has_b_frames),
            "rotation": _rotation_of(container, stream),
            "time_base": Fraction(stream.time_base) if stream.time_base else Fraction(0),
        }
        if facts["rotation"] in (90, 270):  # as displayed, as cv2.VideoCapture returns it
            facts["width"], facts["height"] = facts["height"], facts["width"]
    finally:
        container.close()
    return pts_list, key_list, discard_at, n_none, facts


def probe(path: str | os.PathLike) -> VideoInfo:
    """Probe a video: size, codec, rate, and every frame's timestamp by demuxing.

    Frames are numbered as a sequential decode yields them (see the module's
    notes); where packets and frames may not match one to one, the packets
    around the mismatch are decoded to tell, and a warning names what was found.

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
    pts_list, key_list, discard_at, n_none, facts = _demux(path)
    if n_none:
        raise VideoError(
            f"{path}: {n_none} packets carry no timestamp, so frames cannot be located; "
            "remux it (ffmpeg -i IN -c copy OUT.mkv)"
        )
    if not pts_list:
        raise VideoError(f"{path}: the video holds no frames; re-export it or remove it")
    n_packets = len(pts_list)
    key = np.array(key_list, bool)
    discard = np.zeros(n_packets, bool)
    discard[discard_at] = True
    packets = _Packets(np.array(pts_list, dtype=np.int64), key, discard)
    pts = np.sort(packets.pts)
    reordered = facts["reorders"] and n_packets > 2 and bool(np.all(np.diff(packets.pts) > 0))
    plain = (
        bool(np.all(pts[1:] != pts[:-1]))  # no duplicate timestamps
        and key[0]
        and packets.pts[0] == pts[0]
        and not discard_at
        and not reordered
    )
    undecodable = 0
    if plain:
        keyframes = np.searchsorted(pts, np.sort(packets.pts[key]))
        if keyframes.size == 0 or keyframes[0] != 0:
            # A stream must be decodable from its start; treat frame 0 as a restart point.
            keyframes = np.concatenate([[0], keyframes]).astype(np.int64)
    else:
        pts, keyframes, undecodable, leading = _decoded_order(path, packets, reordered)
        _report_anomalies(path, packets, len(pts), undecodable, leading)
        if not len(pts):
            raise VideoError(
                f"{path}: none of its {n_packets} packets decodes to a frame; "
                "re-export it or remove it"
            )
    reported = facts["reported"]
    if reported and reported != n_packets:
        logger.info("%s: container reports %d frames, demuxing finds %d", path, reported, n_packets)
    n_frames = len(pts)
    return VideoInfo(
        path=path,
        n_frames=n_frames,
        fps=facts["fps"],
        width=facts["width"],
        height=facts["height"],
        codec=facts["codec"],
        pts=pts,
        keyframes=keyframes.astype(np.int64),
        reported_frames=reported,
        # The index lists packets: those the file lacks are frames lost to truncation.
        expected_frames=n_frames + max(0, reported - n_packets) if facts["indexed"] else n_frames,
        rotation=facts["rotation"],
        undecodable=undecodable,
        time_base=facts["time_base"],
    )


def _report_anomalies(
    path: str, packets: _Packets, n_frames: int, undecodable: int, leading: int
) -> None:
    """Log what made a video's packets and frames differ, in one line each."""
    if leading:
        logger.warning(
            "%s: its first %d packets cannot be decoded (it starts mid-GOP, as cutting without "
            "re-encoding leaves it); frame 0 is the first decodable frame and %d frames follow "
            "from it, nothing is lost (re-encode the start to keep those frames)",
            path,
            leading,
            n_frames,
        )
    if undecodable > leading:
        # An edit list that starts past a keyframe (a cut without re-encoding) hides
        # decodable frames, as every player does: they are no frames, nothing is lost.
        level = logging.INFO if packets.discard.any() else logging.WARNING
        logger.log(
            level,
            "%s: %d packets yield no frame%s; frames are numbered as they decode (%d frames)",
            path,
            undecodable - leading,
            " (its edit list hides them)" if level == logging.INFO else "",
            n_frames,
        )
    n_dup = len(packets.pts) - len(np.unique(packets.pts))
    if n_dup:
        logger.warning(
            "%s: %d frames repeat the timestamp of another frame; each is kept as a frame of "
            "its own, in decoding order (remux or re-export it to mend its timestamps)",
            path,
            n_dup,
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
    """Yield frames ``start..stop-1`` one at a time, given the first frame's order key.

    This is the worker-side reader: the planner already knows the order keys
    (:attr:`VideoInfo.pts`), so nothing is probed here, and only one decoded
    frame is held at a time. Frames are keyed from the keyframe sought (found by
    its timestamp) as :func:`probe` keys them, so the frames kept are the ones a
    sequential read numbers ``start..stop-1``.

    Parameters
    ----------
    path : str or os.PathLike
        The video file.
    start, stop : int
        The frame range, in presentation order.
    start_pts : int
        Order key of frame ``start`` (``VideoInfo.pts[start]``).
    seek_pts : int or None
        Timestamp of a keyframe at or before ``start`` to seek to, one of
        ``VideoInfo.pts[VideoInfo.keyframes]``; ``None`` decodes from the
        beginning.
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
        anchor = int(seek_pts) if seek_pts is not None and start > 0 else None
        if anchor is not None:
            container.seek(anchor, stream=stream, backward=True, any_frame=False)
        prev: int | None = None  # the last frame's order key; None until the keyed start
        try:
            for frame in container.decode(stream):
                ts = _timestamp(frame)
                if prev is None and anchor is not None:
                    if ts is None or ts < anchor:
                        continue  # before the keyframe sought: the demuxer may land earlier
                    if ts > anchor:
                        # The demuxer overshot (a sparse or wrong index): start over from the top.
                        logger.debug(
                            "%s: seek overshot frame %d; decoding from the start", path, start
                        )
                        container.seek(0, stream=stream, backward=True, any_frame=False)
                        anchor = None
                        continue
                prev = _order_key(ts, prev)
                if prev < start_pts:
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
    options : dict of str to str, optional
        Encoder options over the codec's defaults (:data:`CODECS`), e.g. ``{"crf": "20"}``.
    opencv_colour : bool
        Convert BGR to 4:2:0 YUV with OpenCV's ``cvtColor`` (BT.601, limited range,
        as FFmpeg's default) instead of FFmpeg's scaler: faster (the render
        benchmark's 16 views: 45.6 to 36.1 s), and closer to the source once
        decoded; frames of even width and height, for
        the codecs that take ``yuv420p``. Off by default: the synthetic
        recordings keep the bytes their figures were measured on.

    Notes
    -----
    Frames written without a time are ``1 / fps`` apart. Frames written with
    their own times (:meth:`write`'s ``time``, every frame or none) make a
    variable-frame-rate video: its stream counts in :data:`TIMED_TIME_BASE`
    (MPEG-4 Part 2 allows no finer than 1/65535 s: 1/60000 there; WebM keeps
    milliseconds), so :func:`probe`'s ``times`` read them back within 1 ms.
    AVI keeps no frame times, so MJPEG frames cannot be timed.

    Examples
    --------
    >>> with VideoWriter("cam1.mp4", 30, "h264") as w:  # doctest: +SKIP
    ...     w.write(frame)
    ...     w.write(frame, time=0.041)  # every frame timed, or none

    """

    #: Seconds per timestamp unit of a video whose frames are written with their times.
    TIMED_TIME_BASE = Fraction(1, 90000)

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        codec: str = "h264",
        gop: int = 120,
        options: dict[str, str] | None = None,
        opencv_colour: bool = False,
    ):
        if codec not in CODECS:
            raise UsageError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
        encoder, _, pix_fmt, defaults = CODECS[codec]
        # MP4 index first (faststart): a file cut short still opens and decodes up to the cut.
        faststart = str(path).lower().endswith((".mp4", ".mov"))
        self._container = av.open(
            str(path), mode="w", options={"movflags": "+faststart"} if faststart else {}
        )

        self._stream = self._container.add_stream(
            encoder, rate=Fraction(fps).limit_denominator(1001)
        )
        self._stream.pix_fmt = pix_fmt
        opts = {**defaults, **(options or {})}
        if codec != "mjpg":  # intra-only: every frame is a keyframe
            opts["g"] = str(gop)
        if codec == "h264":  # keyframes exactly every `gop` frames, no scene-cut extras
            opts.update(keyint_min=str(gop), sc_threshold="0")
        self._stream.options = opts
        self._sized = False
        self._codec = codec
        self._path = str(path)
        self._time_base: Fraction | None = None  # set when frames come with their times
        self._last_pts = -1
        self._opencv = opencv_colour and pix_fmt == "yuv420p"

    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        """Encode one ``uint8`` BGR frame shaped ``(height, width, 3)``.

        Parameters
        ----------
        frame : numpy.ndarray
            The image, BGR.
        time : float, optional
            The frame's time in seconds (0 or more, above the previous frame's by
            at least a timestamp unit); give it for every frame or for none.
            ``probe(path).times`` reads the times back from the first frame's.

        Raises
        ------
        UsageError
            If ``time`` is given for some frames only, does not increase, is
            negative or not finite, or the codec is MJPEG (AVI keeps no times).

        """
        if not self._sized:
            self._stream.height, self._stream.width = frame.shape[:2]
            self._sized = True
            if time is not None:
                self._start_timed()
        elif (time is not None) != (self._time_base is not None):
            raise UsageError(
                f"{self._path}: give every frame a time or none (frames so far were "
                f"written {'with' if self._time_base is not None else 'without'} one)"
            )
        if self._opencv and frame.shape[0] % 2 == 0 and frame.shape[1] % 2 == 0:
            yuv = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGR2YUV_I420)
            vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        else:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        if time is not None:
            pts = round(float(time) / self._time_base) if np.isfinite(time) else -1
            if pts < 0 or pts <= self._last_pts:
                raise UsageError(
                    f"{self._path}: frame time {time!r} s: frame times must be finite, 0 or "
                    f"more and increase by at least {float(self._time_base):.2g} s"
                )
            vf.pts, vf.time_base, self._last_pts = pts, self._time_base, pts
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def _start_timed(self) -> None:
        """Count the stream in a fine time base, before the encoder opens."""
        if self._codec == "mjpg":
            raise UsageError(
                f"{self._path}: MJPEG in AVI keeps no frame times; write timed frames with "
                "h264, mp4v or vp9"
            )
        # MPEG-4 Part 2 refuses time bases finer than 1/65535 s
        base = Fraction(1, 60000) if self._codec == "mp4v" else self.TIMED_TIME_BASE
        self._stream.codec_context.time_base = base
        self._stream.time_base = base
        self._time_base = base

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
