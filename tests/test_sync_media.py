"""Camera offsets from a shared sound and a flash, on videos written by the test.

Every clip films one synthetic scene (tests/helpers/media.py): clicks at
irregular times over a quiet noise floor, and optionally a light that goes on.
Each camera starts recording at a known scene time, ``k`` frames after the
reference (``k`` fractional too), so its true ``sync_offset`` is ``k``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers.media import write_clip
from mocapflow.errors import MocapflowError, VideoError
from mocapflow.sync_media import (
    audio_envelope,
    audio_offsets,
    flash_offsets,
    video_brightness,
)

FPS = 30
# (frames after the reference, audio start against the first frame in seconds)
VIEWS = [(0.0, 0.0), (4.0, 0.02), (7.5, -0.033), (-3.37, 0.011), (12.81, 0.0)]


def _cameras(folder, codec: str, suffix: str, views=VIEWS, **kw) -> list[str]:
    return [
        str(
            write_clip(
                folder / f"cam{v}{suffix}",
                start_s=0.5 + k / FPS,
                duration_s=4.0,
                audio=codec,
                audio_lead_s=lead,
                seed=v,
                **kw,
            )
        )
        for v, (k, lead) in enumerate(views)
    ]


@pytest.mark.parametrize(("codec", "suffix"), [("aac", ".mp4"), ("pcm_s16le", ".mkv")])
def test_audio_offsets_recover_whole_and_fractional_frames(tmp_path, codec, suffix):
    paths = _cameras(tmp_path, codec, suffix)
    estimates = audio_offsets(paths, FPS)
    truth = np.array([k for k, _ in VIEWS])
    got = np.array([e.offset for e in estimates])
    # Measured: errors of at most 0.003 frame (aac in .mp4) and 0.002 (pcm in .mkv).
    np.testing.assert_allclose(got, truth, atol=0.1)
    for e, k in zip(estimates, truth, strict=True):
        assert e.reason is None and e.ok
        assert e.seconds == pytest.approx(e.offset / FPS)
        assert e.confidence > 0.5, (k, e)
    assert estimates[0].offset == 0 and estimates[0].confidence == 1


def test_audio_offsets_relative_to_another_reference(tmp_path):
    paths = _cameras(tmp_path, "pcm_s16le", ".mkv")
    estimates = audio_offsets(paths, FPS, reference=2, max_offset_s=1.0)
    truth = np.array([k for k, _ in VIEWS]) - VIEWS[2][0]
    np.testing.assert_allclose([e.offset for e in estimates], truth, atol=0.1)
    assert estimates[2].offset == 0 and estimates[2].confidence == 1


def test_audio_envelope_start_is_measured_against_the_first_frame(tmp_path):
    for lead in (0.02, -0.033):
        path = write_clip(tmp_path / f"lead{lead}.mkv", audio="pcm_s16le", audio_lead_s=lead)
        envelope, rate, start = audio_envelope(path)
        assert rate == 1000.0
        assert start == pytest.approx(lead, abs=1e-3)
        assert envelope is not None and envelope.ndim == 1 and (envelope >= 0).all()


def test_periodic_clicks_give_low_confidence(tmp_path):
    # Clicks every 0.5 s: every shift by a multiple of 0.5 s matches as well.
    clicks = tuple(0.25 + 0.5 * i for i in range(10))
    paths = _cameras(tmp_path, "pcm_s16le", ".mkv", views=VIEWS[:2], clicks_s=clicks)
    assert audio_offsets(paths, FPS)[1].confidence < 0.3


def test_no_audio_track_is_one_line_naming_the_file(tmp_path):
    mute = write_clip(tmp_path / "mute.mp4", audio=None)
    with pytest.raises(VideoError) as info:
        audio_envelope(mute)
    message = str(info.value)
    assert isinstance(info.value, MocapflowError)
    assert "\n" not in message and message.startswith(f"{mute}: no audio track;")
    good = write_clip(tmp_path / "good.mp4")
    ref, view = audio_offsets([str(good), str(mute)], FPS)
    assert ref.ok and not view.ok and view.reason == message
    assert math.isnan(view.offset) and math.isnan(view.seconds) and view.confidence == 0


def test_silent_track_gives_a_reason_not_a_number(tmp_path):
    silent = write_clip(tmp_path / "silent.mkv", audio="pcm_s16le", silent=True)
    assert audio_envelope(silent)[0] is None
    good = write_clip(tmp_path / "good.mkv", audio="pcm_s16le")
    _, view = audio_offsets([str(good), str(silent)], FPS)
    assert view.reason == "silent audio track" and math.isnan(view.offset)
    _, other = audio_offsets([str(silent), str(good)], FPS)
    assert other.reason == "reference view 0: silent audio track" and math.isnan(other.offset)


def test_flash_offsets_on_brightness_arrays():
    rng = np.random.default_rng(7)
    steps = np.array([150, 143, 162, 150, 121])  # frame where the light is on, per view
    b = 80 + rng.normal(0, 0.5, (steps.size, 300))
    for v, f in enumerate(steps):
        b[v, f:] += 60
        b[v, f + 1 : f + 3] += rng.normal(0, 0.5, 2)
    b[1, 40:45] = np.nan  # frames not decoded, away from the step
    b[3, 280:] = np.nan  # a shorter view
    estimates = flash_offsets(b, reference=0)
    assert [e.offset for e in estimates] == list(steps[0] - steps)
    assert all(e.ok and e.confidence > 0.9 for e in estimates)
    shifted = flash_offsets(b, reference=2)
    assert [e.offset for e in shifted] == list(steps[2] - steps)


def test_flash_offsets_on_decoded_videos(tmp_path):
    frames_after = [0, 5, -7, 13]
    series = [
        video_brightness(
            write_clip(
                tmp_path / f"cam{v}.mp4",
                start_s=1.0 + k / FPS,
                duration_s=3.0 - 0.1 * v,
                flash_s=2.345,
                audio=None,
                seed=v,
            )
        )
        for v, k in enumerate(frames_after)
    ]
    assert [s.size for s in series] == [round((3.0 - 0.1 * v) * FPS) for v in range(4)]
    b = np.full((len(series), max(s.size for s in series)), np.nan)
    for v, s in enumerate(series):
        b[v, : s.size] = s
    estimates = flash_offsets(b)
    assert [e.offset for e in estimates] == frames_after
    assert all(e.ok and e.confidence > 0.9 for e in estimates)


def test_no_flash_gives_a_reason(tmp_path):
    lit = video_brightness(write_clip(tmp_path / "lit.mp4", flash_s=1.01, audio=None))
    dark = video_brightness(write_clip(tmp_path / "dark.mp4", audio=None, seed=3))
    ref, view = flash_offsets(np.stack([lit, dark]))
    assert ref.ok and not view.ok and view.reason.startswith("no brightness step")
    assert math.isnan(view.offset) and view.confidence == 0
    _, other = flash_offsets(np.stack([dark, lit]))
    assert other.reason.startswith("no brightness step") and "reference view 0" in other.reason
