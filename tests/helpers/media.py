"""Write short synthetic videos with an audio track of clicks and an optional light flash.

One *scene* holds the events, in scene seconds: clicks (short broadband bursts
over a quiet noise floor) and a flash (the whole frame jumps from dark to bright
and stays bright). Each camera starts recording at its own scene time
``start_s``: frame ``i`` shows the scene at ``start_s + i / fps``, and audio
sample ``n`` is the scene's sound at ``start_s + audio_lead_s + n / rate``.
``audio_lead_s`` moves the audio's first sample against the first video frame,
as cameras do that start their audio a little before or after the picture; the
streams' timestamps say so, as a real file's do.

A camera that starts ``k`` frames after the reference (``start_s = k / fps``)
has ``sync_offset = +k`` in mocapflow's convention; ``k`` may be fractional.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

#: Click times in scene seconds, at irregular intervals (one correlation peak).
CLICKS_S = (0.41, 0.93, 1.27, 2.02, 2.31, 3.14, 3.58, 4.46)

#: (codec, container suffix) pairs of the audio encoders tried.
AUDIO_CODECS = {"aac": ".mp4", "pcm_s16le": ".mkv", "flac": ".mkv", "libopus": ".mkv"}


def click_track(times: np.ndarray, clicks_s, seed: int, noise: float = 0.003) -> np.ndarray:
    """Return the scene's sound at ``times`` (scene seconds): clicks plus a noise floor.

    A click is a Gaussian-windowed 3 kHz tone burst (about 1 ms wide), a smooth
    function of time, so cameras whose samples fall at different sub-sample times
    hear the same click. The noise floor is drawn per camera (``seed``).
    """
    rng = np.random.default_rng(seed)
    out = noise * rng.standard_normal(times.size)
    for i, c in enumerate(clicks_s):
        d = times - c
        near = np.abs(d) < 0.01
        amplitude = 0.5 + 0.1 * (i % 3)
        out[near] += (
            amplitude * np.sin(2 * np.pi * 3000 * d[near]) * np.exp(-((d[near] / 0.001) ** 2))
        )
    return out


def write_clip(
    path: str | Path,
    *,
    start_s: float = 0.0,
    duration_s: float = 5.0,
    fps: int = 30,
    clicks_s=CLICKS_S,
    flash_s: float | None = None,
    audio: str | None = "aac",
    silent: bool = False,
    audio_lead_s: float = 0.0,
    rate: int = 48000,
    seed: int = 0,
    size: tuple[int, int] = (64, 48),
) -> Path:
    """Write one camera's clip of the scene; return its path.

    Parameters
    ----------
    path : str or Path
        The file (its suffix picks the container: .mp4, .mkv, .mov).
    start_s : float
        Scene time of the first frame, in seconds.
    duration_s : float
        Length of the clip, in seconds.
    fps : int
        Frame rate.
    clicks_s : sequence of float
        Click times in scene seconds.
    flash_s : float or None
        Scene time at which the light goes on (None: no flash).
    audio : str or None
        Audio encoder (``"aac"``, ``"pcm_s16le"``, ...), or None for no audio track.
    silent : bool
        Write an audio track of digital silence.
    audio_lead_s : float
        The audio's first sample, in seconds after the first video frame
        (negative: before it).
    rate : int
        Audio sample rate.
    seed : int
        Seed of the noise floor and the picture's noise.
    size : (int, int)
        Width and height of the picture.
    """
    path = Path(path)
    rng = np.random.default_rng(seed + 1000)
    width, height = size
    n_frames = int(round(duration_s * fps))
    # Timestamps start at 0 for whichever stream starts first: a player's view.
    video_t0 = max(0.0, -audio_lead_s)
    audio_t0 = max(0.0, audio_lead_s)
    with av.open(str(path), mode="w") as container:
        vstream = container.add_stream("mpeg4", rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        vstream.bit_rate = 2_000_000  # the default 200 kb/s makes rate-control brightness steps
        # A fine codec time base (MPEG-4 allows denominators up to 65535), so that the
        # first frame's timestamp is the lead asked for, not rounded to a frame.
        vstream.codec_context.time_base = Fraction(1, 100 * fps)
        vstream.time_base = Fraction(1, 90000)
        astream = None
        if audio is not None:
            astream = container.add_stream(audio, rate=rate, layout="mono")
            astream.time_base = Fraction(1, rate)
        # Video.
        vt0 = round(video_t0 * 90000)
        for i in range(n_frames):
            t = start_s + i / fps
            level = 200 if flash_s is not None and t >= flash_s else 60
            img = np.full((height, width, 3), level, np.uint8)
            x = int(i * 2) % (width - 8)
            img[20:28, x : x + 8] = 255 - level
            img = np.clip(img + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = vt0 + round(i * 90000 / fps), Fraction(1, 90000)
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        if astream is None:
            return path
        # Audio: the scene's sound from the camera's audio start on.
        n_samples = int(round(duration_s * rate))
        times = start_s + audio_lead_s + np.arange(n_samples) / rate
        sound = np.zeros(n_samples) if silent else click_track(times, clicks_s, seed)
        fmt = astream.codec_context.codec.audio_formats[0].name
        if fmt.startswith(("s16", "s32")):
            bits = 16 if fmt.startswith("s16") else 32
            full = 2.0 ** (bits - 1)
            samples = np.clip(np.round(sound * full), -full, full - 1).astype(f"int{bits}")
        else:
            samples = sound.astype(np.float32)
        block = astream.codec_context.frame_size or 1024
        at0 = round(audio_t0 * rate)
        for s in range(0, n_samples, block):
            chunk = samples[s : s + block]
            if chunk.size < block and astream.codec_context.frame_size:
                chunk = np.pad(chunk, (0, block - chunk.size))
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format=fmt, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, at0 + s, Fraction(1, rate)
            for packet in astream.encode(frame):
                container.mux(packet)
        for packet in astream.encode():
            container.mux(packet)
    return path
