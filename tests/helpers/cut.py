"""Re-encode a video without its first frames: a camera started that many frames late."""

from __future__ import annotations

from pathlib import Path

from mocapflow.video import VideoWriter, probe, read_frames


def cut_video(src: str | Path, dst: str | Path, skip: int, fps: float | None = None) -> Path:
    """Write ``src`` from frame ``skip`` on to ``dst`` (H.264 through PyAV); return ``dst``.

    Cutting ``k`` frames makes the copy's ``sync_offset`` against the original ``+k``.
    """
    info = probe(src)
    frames = read_frames(src, skip, info.n_frames)
    with VideoWriter(dst, fps or info.fps, "h264", gop=30) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(dst)


def cut_recording(src: Path, dst: Path, cuts: dict[str, int]) -> Path:
    """Re-encode every view of ``src`` (``synchronized_videos/``) into ``dst``, cut by ``cuts``."""
    videos = dst / "synchronized_videos"
    videos.mkdir(parents=True, exist_ok=True)
    for name, skip in cuts.items():
        cut_video(src / "synchronized_videos" / f"{name}.mp4", videos / f"{name}.mp4", skip)
    return dst
