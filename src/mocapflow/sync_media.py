"""Time offsets between cameras from what they heard (a clap) or saw (a flash).

Two cues that every camera of a recording shares, and that need no tracking:

* **Audio.** Each video's sound track becomes an onset envelope (where the sound
  gets suddenly louder), and each view's envelope is cross-correlated with the
  reference view's; the lag of the highest peak, refined to a fraction of a
  sample, is the offset.
* **Flash.** Each view's mean frame brightness has one large step up where a
  light went on (or a flash fired); the offsets are the differences of the step
  frames.

Offsets follow mocapflow's convention: a view's ``sync_offset`` is in frames of
the reference view, and frame ``i`` of view ``v`` shows the instant that the
reference shows at frame ``i + sync_offset[v]``. A view that started recording
``k`` frames after the reference has ``sync_offset = +k``; in seconds,
``offset_s = sync_offset / fps_ref``, and a moment at time ``t`` of view ``v``'s
own clock (seconds from its first frame) is at ``t + offset_s`` on the
reference's clock.

Every function here is a plain function of files or arrays: no Dask, no store.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from scipy import signal

from .errors import UsageError, VideoError, shown_path

__all__ = [
    "AUDIO_RATE",
    "FLASH_MIN_CONFIDENCE",
    "FLASH_MIN_FRACTION",
    "FLASH_MIN_SNR",
    "HIGHPASS_HZ",
    "HOP_S",
    "NEIGHBOURHOOD_S",
    "SILENCE_LEVEL",
    "MediaEstimate",
    "audio_envelope",
    "audio_offsets",
    "flash_offsets",
    "video_brightness",
]

log = logging.getLogger(__name__)

#: Sample rate (Hz) the sound is resampled to before its envelope is taken.
AUDIO_RATE = 16000
#: Hop of the onset envelope, in seconds (its sample rate is ``1 / HOP_S``).
HOP_S = 0.001
#: Cut-off (Hz) of the high-pass filter applied before the envelope.
HIGHPASS_HZ = 1000.0
#: Peak absolute sample value (full scale 1) at or below which a track is silent (-80 dBFS).
SILENCE_LEVEL = 1e-4
#: Half-width (s) of the correlation peak's neighbourhood, excluded from the runner-up.
NEIGHBOURHOOD_S = 0.05
#: Energy floor (full scale 1) added before the logarithm: -100 dBFS.
_ENERGY_FLOOR = 1e-10
#: A brightness step is clear when its confidence is at least this ...
FLASH_MIN_CONFIDENCE = 0.5
#: ... and it is at least this many times the frame-to-frame noise (robust sigma).
FLASH_MIN_SNR = 6.0
#: ... and at least this fraction of the view's median brightness (codec noise is not a flash).
FLASH_MIN_FRACTION = 0.05
#: Frames either side of the step excluded from the runner-up (a step spread over exposures).
_FLASH_GUARD = 2


@dataclass(frozen=True)
class MediaEstimate:
    """One view's offset from a media cue (sound or flash).

    Attributes
    ----------
    offset : float
        ``sync_offset`` in reference frames (sub-frame for audio); NaN when there
        is no estimate.
    seconds : float
        The same offset in seconds (``offset / fps_ref``); NaN when there is none.
    confidence : float
        0 to 1: how clearly the chosen match beats the next best one (each
        function defines it exactly); 0 when there is no estimate.
    reason : str or None
        Why there is no estimate (no audio track, silence, no brightness step);
        None when there is one.
    """

    offset: float
    seconds: float
    confidence: float
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether there is an estimate (no ``reason``)."""
        return self.reason is None


def _missing(reason: str) -> MediaEstimate:
    return MediaEstimate(math.nan, math.nan, 0.0, reason)


_REFERENCE = MediaEstimate(0.0, 0.0, 1.0)


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    """Open a video with PyAV, or raise a one-line :class:`VideoError` naming it."""
    try:
        container = av.open(os.fspath(path), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(
            f"{shown_path(path)}: not a readable video ({exc.__class__.__name__}: {exc}); "
            "check the path, or re-export the file"
        ) from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{shown_path(path)}: the file has no video stream; remove it")
    return container


def _seconds(pts: int | None, time_base: Fraction | None) -> Fraction | None:
    return None if pts is None or time_base is None else pts * time_base


def audio_envelope(
    path: str | os.PathLike, rate: int = AUDIO_RATE, hop_s: float = HOP_S
) -> tuple[np.ndarray | None, float, float]:
    """Return the onset envelope of a video's first audio track.

    The sound is decoded with PyAV, resampled to mono float at ``rate`` and
    high-passed at :data:`HIGHPASS_HZ` (4th-order Butterworth). Its energy is
    summed over blocks of ``hop_s`` seconds, and the envelope is the
    half-wave-rectified difference of the log energy from one block to the next:
    ``env[k] = max(0, log10(E[k] + floor) - log10(E[k-1] + floor))``, with
    ``env[0] = 0``. Why this envelope: claps, clicks and slates are broadband
    and sudden, while hum, footsteps and handling noise sit below 1 kHz; the log
    makes the envelope independent of each camera's gain and distance (a gain is
    an added constant, removed by the difference); the rectification keeps onsets
    only (decays differ with each room position); and a 1 ms hop resolves a
    click to well under a frame while costing O(samples) time and only the
    envelope's memory (the sound is processed frame by frame, never held whole).
    A spectral flux would be more robust to loud tonal changes but needs an STFT
    per millisecond.

    Parameters
    ----------
    path : str or os.PathLike
        The video.
    rate : int
        Sample rate (Hz) the sound is resampled to.
    hop_s : float
        Hop of the envelope in seconds; ``rate * hop_s`` is rounded to whole samples.

    Returns
    -------
    envelope : numpy.ndarray or None
        The onset envelope (float64), ``envelope[k]`` at ``start + k / envelope_rate``
        seconds of the video's clock; **None when the track is silent**: no
        decoded sample's magnitude is above :data:`SILENCE_LEVEL` (-80 dBFS), or
        the track holds no samples.
    envelope_rate : float
        Samples per second of the envelope (``rate / round(rate * hop_s)``).
    start : float
        Time of the audio's first sample in seconds after the video's first
        frame (negative: the audio starts first), from the first decoded frames'
        timestamps (the streams' ``start_time`` where a frame has none).

    Raises
    ------
    VideoError
        The file cannot be opened, has no video stream or no audio track, or
        its audio cannot be decoded.

    Notes
    -----
    The audio is taken as continuous from its first sample on: gaps in its
    timestamps are not filled.
    """
    hop = max(1, round(rate * hop_s))
    env_rate = rate / hop
    name = shown_path(path)
    container = _open(path)
    with container:
        if not container.streams.audio:
            raise VideoError(
                f"{name}: no audio track; synchronise this recording by a flash or by "
                "keypoint motion instead"
            )
        vstream, astream = container.streams.video[0], container.streams.audio[0]
        vstream.thread_type = "AUTO"
        sos = signal.butter(4, HIGHPASS_HZ, "highpass", fs=rate, output="sos")
        zi = np.zeros((sos.shape[0], 2))
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        video_t0: Fraction | None = None
        audio_t0: Fraction | None = None
        carry = np.zeros(0)
        energies: list[np.ndarray] = []
        peak = 0.0

        def consume(frames) -> None:
            nonlocal carry, zi, peak
            for out in frames:
                x = out.to_ndarray().reshape(-1).astype(np.float64)
                if x.size == 0:
                    continue
                peak = max(peak, float(np.max(np.abs(x))))
                y, zi = signal.sosfilt(sos, x, zi=zi)
                y = np.concatenate([carry, y])
                whole = y.size // hop * hop
                energies.append(np.mean(y[:whole].reshape(-1, hop) ** 2, axis=1))
                carry = y[whole:]

        try:
            for packet in container.demux(vstream, astream):
                if packet.stream is vstream:
                    if video_t0 is None:
                        for frame in packet.decode():
                            video_t0 = _seconds(frame.pts, frame.time_base)
                            if video_t0 is None:
                                video_t0 = _seconds(vstream.start_time, vstream.time_base)
                            video_t0 = video_t0 or Fraction(0)
                            break
                    continue
                for frame in packet.decode():
                    if audio_t0 is None:
                        audio_t0 = _seconds(frame.pts, frame.time_base)
                        if audio_t0 is None:
                            audio_t0 = _seconds(astream.start_time, astream.time_base)
                        audio_t0 = audio_t0 or Fraction(0)
                    consume(resampler.resample(frame))
            consume(resampler.resample(None))
        except av.error.FFmpegError as exc:
            raise VideoError(
                f"{name}: the audio track cannot be decoded ({exc.__class__.__name__}: "
                f"{exc}); re-export the file or synchronise it another way"
            ) from None
    if video_t0 is None:  # no video frame decoded: the stream's own start
        video_t0 = _seconds(vstream.start_time, vstream.time_base) or Fraction(0)
    start = float((audio_t0 or Fraction(0)) - video_t0)
    energy = np.concatenate(energies) if energies else np.zeros(0)
    if peak <= SILENCE_LEVEL or energy.size == 0:
        log.info("%s: the audio track is silent (peak %.3g)", name, peak)
        return None, env_rate, start
    envelope = np.zeros(energy.size)
    envelope[1:] = np.maximum(0.0, np.diff(np.log10(energy + _ENERGY_FLOOR)))
    log.debug(
        "%s: %d envelope samples at %g Hz, audio at %+.4f s of the video",
        name,
        envelope.size,
        env_rate,
        start,
    )
    return envelope, env_rate, start


def _parabolic(c: np.ndarray, i: int) -> float:
    """Return the sub-sample shift (-0.5..0.5) of a peak at ``c[i]`` from a parabola fit."""
    if i <= 0 or i >= c.size - 1:
        return 0.0
    left, mid, right = c[i - 1], c[i], c[i + 1]
    denom = left - 2 * mid + right
    if denom >= 0:  # not a maximum of a parabola
        return 0.0
    return float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))


def audio_offsets(
    paths: list[str],
    fps_ref: float,
    reference: int = 0,
    max_offset_s: float | None = None,
) -> list[MediaEstimate]:
    """Return each view's ``sync_offset`` from the sound its video recorded.

    Each view's onset envelope (:func:`audio_envelope`) is cross-correlated with
    the reference's by FFT. With ``x`` and ``y`` the reference's and the view's
    envelopes less their means, the normalised correlation at lag ``L`` (in
    envelope samples) is ``c[L] = sum_n x[n + L] y[n] / (|x| |y|)``, between -1
    and 1; its highest value ``p`` (among lags whose offset is within
    ``max_offset_s``) is refined to a fraction of a sample by a parabola through
    it and its two neighbours. The offset in seconds is
    ``start_ref - start_v + L / envelope_rate``, with each ``start`` the audio's
    start on its own video's clock, and ``offset = seconds * fps_ref``.

    **Confidence** is ``1 - max(q, 0) / p``, where ``q`` is the runner-up: the
    highest ``c`` at a lag more than :data:`NEIGHBOURHOOD_S` (50 ms) from the
    peak's (within ``max_offset_s`` too; 0 if there is none). It is 1 when
    nothing else correlates, and near 0 when another lag matches as well (a
    periodic sound, or no shared sound at all). The reference's own estimate is
    offset 0 with confidence 1.

    Parameters
    ----------
    paths : list of str
        One video per view.
    fps_ref : float
        Frame rate of the reference view.
    reference : int
        Index of the reference view.
    max_offset_s : float or None
        Largest plausible offset in seconds, either way (None: any).

    Returns
    -------
    list of MediaEstimate
        One per view, in order. A view without an estimate has NaN offsets, 0
        confidence and a ``reason``: its file's one-line error (no audio track,
        unreadable), ``"silent audio track"``, ``"no common sound ..."``, or the
        reference's own reason.

    Raises
    ------
    UsageError
        ``paths`` is empty, ``reference`` is not one of its indices, or
        ``fps_ref`` or ``max_offset_s`` is not positive.
    """
    if not paths:
        raise UsageError("audio_offsets: no videos given; pass one path per view")
    if not 0 <= reference < len(paths):
        raise UsageError(f"reference={reference}: no such view; choose 0 to {len(paths) - 1}")
    if not fps_ref > 0:
        raise UsageError(f"fps_ref={fps_ref}: the frame rate must be positive")
    if max_offset_s is not None and not max_offset_s > 0:
        raise UsageError(f"max_offset_s={max_offset_s}: must be positive, or None for any")

    envelopes: list = []
    for path in paths:
        try:
            envelopes.append(audio_envelope(path))
        except VideoError as exc:
            envelopes.append(str(exc))
    ref = envelopes[reference]
    ref_reason = ref if isinstance(ref, str) else ("silent audio track" if ref[0] is None else None)
    out: list[MediaEstimate] = []
    for v, item in enumerate(envelopes):
        if v == reference:
            out.append(_REFERENCE)
        elif isinstance(item, str):
            out.append(_missing(item))
        elif item[0] is None:
            out.append(_missing("silent audio track"))
        elif ref_reason is not None:
            out.append(_missing(f"reference view {reference}: {ref_reason}"))
        else:
            out.append(_correlate(ref, item, fps_ref, max_offset_s))
            log.info(
                "view %d: audio offset %+.3f frames (%+.5f s), confidence %.2f",
                v,
                out[-1].offset,
                out[-1].seconds,
                out[-1].confidence,
            )
    return out


def _correlate(ref, view, fps_ref: float, max_offset_s: float | None) -> MediaEstimate:
    """Return one view's estimate from its envelope and the reference's."""
    (xr, rate, start_ref), (yv, rate_v, start_v) = ref, view
    if rate != rate_v:  # both come from audio_envelope's defaults
        raise UsageError(f"envelope rates differ ({rate} and {rate_v} Hz)")
    x, y = xr - xr.mean(), yv - yv.mean()
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    if norm == 0.0:
        return _missing("no common sound: an audio envelope is flat")
    c = signal.correlate(x, y, mode="full", method="fft") / norm
    lags = signal.correlation_lags(x.size, y.size, mode="full")
    base = start_ref - start_v
    seconds = base + lags / rate
    allowed = np.ones(c.size, bool) if max_offset_s is None else np.abs(seconds) <= max_offset_s
    if not allowed.any():
        return _missing(f"no common sound within {max_offset_s} s")
    masked = np.where(allowed, c, -np.inf)
    i = int(np.argmax(masked))
    p = float(c[i])
    if p <= 0:
        return _missing("no common sound: the envelopes do not correlate")
    far = allowed & (np.abs(lags - lags[i]) > NEIGHBOURHOOD_S * rate)
    q = float(c[far].max()) if far.any() else 0.0
    confidence = 1.0 - max(q, 0.0) / p
    sec = float(base + (lags[i] + _parabolic(c, i)) / rate)
    return MediaEstimate(sec * fps_ref, sec, confidence)


def flash_offsets(brightness: np.ndarray, reference: int = 0) -> list[MediaEstimate]:
    """Return each view's ``sync_offset`` from a sudden brightness step seen by all views.

    For videos at the same frame rate. In each view the step is the largest rise
    of mean brightness between two consecutive decoded frames, ``s1 = b[f] -
    b[f - 1]``, and its frame ``f`` is the first frame at the new level. If view
    ``v`` started ``k`` frames after the reference, the light went on at frame
    ``f_ref - k`` of view ``v``, so ``sync_offset[v] = f_ref - f_v`` (a whole
    number of frames).

    **Confidence** of a view's step is ``1 - max(s2, 0) / s1``, where ``s2`` is
    the next largest rise more than 2 frames away from the step (a light that
    comes on during an exposure spreads its step over two frames). A step is
    clear when its confidence is at least :data:`FLASH_MIN_CONFIDENCE` (0.5) and
    ``s1`` is at least :data:`FLASH_MIN_SNR` (6) times the frame-to-frame noise
    (1.4826 times the median absolute deviation of the rises) and
    :data:`FLASH_MIN_FRACTION` (5 %) of the view's median brightness (so a
    codec's rate control or auto-exposure drift is not a flash). A view's estimate
    has the lower of its own and the reference's confidence; the reference's own
    estimate is offset 0 with confidence 1.

    Parameters
    ----------
    brightness : numpy.ndarray
        Mean frame brightness shaped ``(view, time)``: ``brightness[v, i]`` is
        frame ``i`` of view ``v``, NaN where that frame was not decoded (rises
        next to a NaN are not counted). Any unit with zero at black (mean luma,
        0-255, as :func:`video_brightness` gives).
    reference : int
        Index of the reference view.

    Returns
    -------
    list of MediaEstimate
        One per view; ``seconds`` is NaN (the frame rate is not known here:
        multiply ``offset`` by ``1 / fps``). A view without a clear step, or all
        views but the reference when the reference has none, has the reason
        ``"no brightness step ..."``.

    Raises
    ------
    UsageError
        ``brightness`` is not 2-D or ``reference`` is not one of its views.
    """
    b = np.asarray(brightness, dtype=np.float64)
    if b.ndim != 2:
        raise UsageError(f"brightness has shape {b.shape}; expected (view, time)")
    if not 0 <= reference < b.shape[0]:
        raise UsageError(f"reference={reference}: no such view; choose 0 to {b.shape[0] - 1}")
    steps = [_step(row) for row in b]
    f_ref, conf_ref, why_ref = steps[reference]
    out: list[MediaEstimate] = []
    for v, (f, conf, why) in enumerate(steps):
        if v == reference:
            out.append(MediaEstimate(0.0, math.nan, 1.0))
        elif why is not None:
            out.append(_missing(why))
        elif why_ref is not None:
            out.append(_missing(f"{why_ref} in the reference view {reference}"))
        else:
            out.append(MediaEstimate(float(f_ref - f), math.nan, min(conf, conf_ref)))
            log.info("view %d: flash at frame %d, offset %+d frames", v, f, f_ref - f)
    return out


def _step(b: np.ndarray) -> tuple[int, float, str | None]:
    """Return one view's step frame, its confidence, and why there is none (else None)."""
    rise = np.diff(b)
    valid = np.isfinite(rise)
    if not valid.any():
        return -1, 0.0, "no brightness step: fewer than two consecutive decoded frames"
    i = int(np.argmax(np.where(valid, rise, -np.inf)))
    s1 = float(rise[i])
    idx = np.arange(rise.size)
    far = valid & (np.abs(idx - i) > _FLASH_GUARD)
    s2 = float(rise[far].max()) if far.any() else 0.0
    med = np.median(rise[valid])
    sigma = 1.4826 * float(np.median(np.abs(rise[valid] - med)))
    confidence = 1.0 - max(s2, 0.0) / s1 if s1 > 0 else 0.0
    level = float(np.nanmedian(np.abs(b)))
    if (
        s1 <= 0
        or confidence < FLASH_MIN_CONFIDENCE
        or s1 < FLASH_MIN_SNR * sigma
        or s1 < FLASH_MIN_FRACTION * level
    ):
        return (
            -1,
            0.0,
            f"no brightness step (largest rise {s1:.3g} at frame {i + 1}, "
            f"next {s2:.3g}, noise {sigma:.3g})",
        )
    return i + 1, confidence, None


def video_brightness(path: str | os.PathLike) -> np.ndarray:
    """Return the mean luma (0-255, full range) of every frame of a video, in decoding order.

    Frames are decoded sequentially with PyAV (automatic threads); element ``i``
    is the ``i``-th frame that decoding yields, converted to gray by FFmpeg
    (limited-range luma stretched to 0-255).

    Parameters
    ----------
    path : str or os.PathLike
        The video.

    Returns
    -------
    numpy.ndarray
        float64, one value per decoded frame.

    Raises
    ------
    VideoError
        The file cannot be opened, has no video stream, or fails to decode.
    """
    values: list[float] = []
    container = _open(path)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                values.append(float(frame.to_ndarray(format="gray").mean()))
        except av.error.FFmpegError as exc:
            raise VideoError(
                f"{shown_path(path)}: decoding failed after frame {len(values)} "
                f"({exc.__class__.__name__}: {exc}); re-export the file"
            ) from None
    return np.asarray(values, dtype=np.float64)
