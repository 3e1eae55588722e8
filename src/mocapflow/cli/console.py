"""What the commands print: one progress bar for every stage, and the result tables."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..quality import doubt_line, people_line
from ..schema import FILTERED
from .app import err, out

__all__ = [
    "print_calibration",
    "print_intrinsics",
    "print_problems",
    "print_info",
    "print_result",
    "print_summary",
    "tracking_progress",
]


class _Tracking:
    """A progress callback for :func:`mocapflow.process` (and the stages that call it)."""

    def __init__(self, label: str):
        self.label = label
        self.progress = Progress(
            TextColumn("[bold]{task.fields[label]}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tasks"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err,
        )
        self.task = None
        self.shown = False
        self.stages: dict[str, int] = {}
        self.frames = 0
        self.t0 = time.perf_counter()

    def __call__(self, kind: str, info: dict) -> None:
        if kind == "stage":
            self._stage(info)
        elif kind == "start":
            self._start(info)
        elif kind == "chunk" and self.task is not None:
            self.frames += info.get("n_decoded", 0)
            rate = self.frames / max(time.perf_counter() - self.t0, 1e-9)
            self.progress.update(self.task, advance=1, rate=f"{rate:,.0f} frames/s")
            if info.get("error"):
                err.print(f"[yellow]warning:[/] {escape(info['error'])}", highlight=False)

    def _stage(self, info: dict) -> None:
        """Show a later stage (triangulation, filtering, the fit) on a row of its own."""
        self._show()
        if info["label"] not in self.stages:
            self.stages[info["label"]] = self.progress.add_task(
                info["label"], total=info["total"], rate="", label=info["label"]
            )
        self.progress.update(
            self.stages[info["label"]], completed=info["done"], total=info["total"]
        )

    def _show(self) -> None:
        if not self.shown:
            self.progress.start()
            self.shown = True

    def _start(self, info: dict) -> None:
        if not info["todo"]:
            err.print(f"{info['store']}: all {info['n_tasks']} chunks are already done")
            return
        if self.task is None:  # the first stage: say where it runs
            session = info.get("session")
            err.print(f"dashboard: [link={info['dashboard']}]{info['dashboard']}[/link]")
            if session is not None:
                err.print(f"cluster:   {escape(session.where)}", highlight=False)
                source = session.profile.get("source")
                if source and source != "built-in":
                    err.print(
                        f"profile:   {session.profile['name']} from {source}", highlight=False
                    )
            self._show()
        else:
            self.progress.remove_task(self.task)
        skipped = info["n_tasks"] - info["todo"]
        if skipped:
            err.print(f"resuming:  {skipped} chunks already done, {info['todo']} to compute")
        self.task = self.progress.add_task("track", total=info["todo"], rate="", label=self.label)
        self.frames, self.t0 = 0, time.perf_counter()


@contextmanager
def tracking_progress(label: str = "tracking"):
    """Yield a progress callback; the bar is cleaned up however the block ends."""
    tracker = _Tracking(label)
    try:
        yield tracker
    finally:
        if tracker.shown:  # a bar never shown leaves no trace
            tracker.progress.stop()


def print_result(result) -> None:
    """Print the per-view table of a tracking run, and where its outputs are."""
    table = Table(title=f"{result.store}", title_justify="left")
    for col in ("view", "status", "frames", "decoded"):
        table.add_column(col)
    colours = {"ok": "green", "partial": "yellow", "failed": "red"}
    for name, v in result.views.items():
        table.add_row(
            name,
            f"[{colours[v['status']]}]{v['status']}[/]",
            str(v["n_frames"]),
            str(v["n_decoded"]),
        )
    out.print(table)
    for name, v in result.views.items():  # whole lines: paths and messages never wrap in a cell
        if v["error"]:
            out.print(f"[{colours[v['status']]}]{name}:[/] {escape(v['error'])}", highlight=False)
    out.print(
        f"{result.computed} chunks computed, {result.skipped} skipped, "
        f"{len(result.failed_tasks)} failed, in {result.seconds:.1f} s"
    )
    if result.report:
        out.print(f"report: {result.report}", highlight=False)
    if result.run_report:
        out.print(f"run report: {result.run_report}", highlight=False)
    out.print(
        f"open it: [bold]xr.open_zarr({escape(repr(str(result.store)))}, consolidated=False)[/] "
        f"or [bold]mocapflow info {escape(str(result.store))}[/]",
        highlight=False,
    )


def print_summary(summary: dict, store=None, doubts: bool = False) -> None:
    """Print detections per view, and per 3-D group the points, error and bone stability.

    With ``doubts``, also a line per person whose 3-D cannot be trusted (``info``; the
    commands that triangulate end on the verdict's one line instead).
    """
    detected = {v["view"]: v.get("detected_pct") for v in summary["views"]}
    if any(v is not None for v in detected.values()):
        out.print(
            "detections per view: "
            + ", ".join(f"{k} {v:.0f}%" for k, v in detected.items() if v is not None),
            highlight=False,
        )
    for group, s in summary["groups"].items():
        where = f"{store}/{group}" if store is not None else group
        text = f"{where}: {s['triangulated'] * 100:.1f}% of points triangulated"
        if group != FILTERED:  # filtering keeps the triangulation's errors
            text += (
                f", reprojection error median {s['median_error_px']:.1f} px, "
                f"p90 {s['p90_error_px']:.1f} px"
            )
        if s["bones"]:
            text += f", bone length CV median {s['bone_cv_median']:.3f} ({s['bones']} bones)"
        out.print(escape(text), highlight=False)
        if group != FILTERED and s.get("people"):
            out.print(escape(f"{where}: {people_line(s['people'])}"), highlight=False)
        for who, d in s.get("doubts", {}).items() if doubts else ():
            text = f"{where}: {who} cannot be trusted: {doubt_line(d)}"
            err.print(f"[red]untrusted:[/] {escape(text)}", highlight=False)


def print_calibration(fit, path) -> None:
    """Print the per-camera table of a calibration."""
    table = Table(title=f"{path}", title_justify="left")
    for col in ("camera", "board views", "RMS error (px)", "focal (px)", "centre (mm)"):
        table.add_column(col)
    for cam in fit.cameras:
        table.add_row(
            cam.name,
            str(fit.n_views[cam.name]),
            f"{fit.per_camera_rms[cam.name]:.3f}",
            f"{cam.matrix[0, 0]:.1f}",
            " ".join(f"{v:.0f}" for v in cam.center),
        )
    out.print(table)
    out.print(f"RMS reprojection error {fit.rms:.3f} px over {fit.n_frames} board poses")
    page = Path(path).with_suffix(".html")
    if page.is_file():
        out.print(f"report: {escape(str(page))}", highlight=False)
    _print_rejected(fit.rejected)
    for w in fit.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)


def _print_rejected(rejected) -> None:
    """One line per camera and reason: how many board views were left out."""
    counts: dict[tuple[str, str], int] = {}
    for camera, _, reason in rejected:
        counts[camera, reason] = counts.get((camera, reason), 0) + 1
    for (camera, reason), n in counts.items():
        out.print(escape(f"{camera}: {n} board view(s) left out: {reason}"), highlight=False)


def print_intrinsics(results, path) -> None:
    """Print the per-camera table of intrinsics fitted apart."""
    table = Table(title=f"{path}", title_justify="left")
    for col in ("camera", "size", "board views", "RMS error (px)", "focal (px)", "centre (px)"):
        table.add_column(col)
    for name, r in results.items():
        m = r.camera.matrix
        table.add_row(
            name,
            f"{r.camera.size[0]}x{r.camera.size[1]}",
            str(r.n_views),
            f"{r.rms:.3f}",
            f"{m[0, 0]:.1f}",
            f"{m[0, 2]:.1f} {m[1, 2]:.1f}",
        )
    out.print(table)
    for r in results.values():
        _print_rejected(r.rejected)
        for w in r.warnings:
            err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)


def print_info(store, s: dict) -> None:
    """``mocapflow info``: the views, their outcome, the run facts, the 3-D groups."""
    attrs = s["attrs"]
    table = Table(title=str(store), title_justify="left")
    from ..sync import said

    sync = attrs.get("sync") or {}
    cols = ["view", "frames", "size", "codec", "status", "decoded", "detected"]
    for col in cols + (["offset", "found by"] if sync else []):
        table.add_column(col)
    for v in s["views"]:
        det = f"{v['detected_pct']:.1f}%" if "detected_pct" in v else "-"
        row = [v["view"], str(v["frames"]), v["size"], v["codec"], v["status"]]
        row += [str(v["decoded"]), det]
        if sync:
            e = sync.get("views", {}).get(v["view"], {})
            off = e.get("offset")
            row += ["-" if off is None else said(off), _found_by(e)]
        table.add_row(*row)
    out.print(table)
    if sync:
        out.print(
            f"[bold]{'sync':>9}[/]: offsets in frames of {escape(str(sync.get('reference')))} "
            "(frame i of a view shows the reference's frame i + offset)",
            highlight=False,
        )
    for v in s["views"]:
        if v.get("error"):
            out.print(f"[yellow]{v['view']}:[/] {escape(v['error'])}", highlight=False)
    cluster = attrs.get("cluster", {})
    facts = {
        "tracker": f"{attrs.get('tracker')} {attrs.get('tracker_params', {})}",
        "chunks": f"{attrs.get('chunk_frames')} frames/task, {attrs.get('time_chunk')}/Zarr chunk",
        "cluster": cluster.get("reason", "-"),
        "started": attrs.get("start_time", "-"),
        "ended": attrs.get("end_time", "-"),
        "complete": "no: damaged (see below)"
        if s["problems"]
        else "yes"
        if attrs.get("completed")
        else "no (rerun the same command to resume)",
        "software": f"{attrs.get('source_software')} {attrs.get('source_version')}",
    }
    for k, v in facts.items():
        out.print(f"[bold]{k:>9}[/]: {escape(str(v))}", highlight=False)
    print_summary({"views": [], "groups": s["groups"]}, doubts=True)
    if s["groups"]:
        from ..kinematics import describe

        for line in describe(store):
            out.print(escape(line), highlight=False)
    for name, why in s["stale"].items():
        out.print(f"[yellow]stale:[/] {escape(name)}: {escape(why)}", highlight=False)
    print_problems(store, s["problems"])


def _found_by(e: dict) -> str:
    """How an offset was found, with its confidence."""
    method = e.get("method", "-")
    if method in ("motion", "audio", "flash") and e.get("confidence") is not None:
        return f"{method} ({e['confidence']:.2f})"
    return method


def print_sync(result) -> None:
    """``mocapflow sync``: per view its offset in frames and seconds, the method, the confidence."""
    table = Table(title=f"{result.store}: offsets against {result.reference}", title_justify="left")
    for col in ("view", "offset (frames)", "offset (s)", "method", "confidence"):
        table.add_column(col)
    from ..sync import said

    for e in result.chosen:
        table.add_row(e.view, said(e.offset), f"{e.seconds:+.4f}", e.method, f"{e.confidence:.2f}")
    out.print(table)  # methods that disagree are logged as warnings
    out.print(
        "frame i of a view shows the reference's frame i + offset; triangulate, filter and "
        "export now align the views by them",
        highlight=False,
    )


def print_problems(store, problems: list) -> None:
    """Name every damaged or missing part of a store, and the fix."""
    for p in problems[:20]:
        out.print(f"[red]damaged:[/] {escape(str(p))}", highlight=False)
    if len(problems) > 20:
        out.print(f"[red]damaged:[/] ... and {len(problems) - 20} more", highlight=False)
    if problems:
        fixes = ["mocapflow process on its recording recomputes the 2-D chunks"]
        if any(p.group for p in problems):
            fixes.append("mocapflow triangulate / filter rewrite the 3-D groups")
        out.print(f"{len(problems)} problems in {store}; " + "; ".join(fixes), highlight=False)


def _spans(frames: list[int], limit: int = 4) -> str:
    """``3-7, 12, 40-41 ...``: frame indices as runs."""
    runs: list[list[int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit])
    return text + (" ..." if len(runs) > limit else "")


def print_kinematics(result) -> None:
    """Print what ``kinematics`` wrote: groups, per person the frames lost and IK's error."""
    store = result.store
    out.print(escape(f"{store}: {', '.join(result.groups)} from {result.source}"), highlight=False)
    for who, lost in result.unseen.items():
        if lost:
            out.print(
                escape(f"{who}: no angles in {len(lost)} frames (keypoints missing): "
                       f"{_spans(lost)}"),
                highlight=False,
            )  # fmt: skip
    for who, s in result.ik.items():
        text = (
            f"{who}: IK solved {s['solved']} of {s['frames']} frames, marker RMS median "
            f"{s['rms_median_mm']:.1f} mm, max {s['rms_max_mm']:.1f} mm"
        )
        if s["unsolved"]:
            text += f"; not solved: {_spans(s['unsolved'])}"
        if s["flagged"]:
            text += f"; flagged (RMS above threshold): {len(s['flagged'])} frames, " + _spans(
                s["flagged"]
            )
        out.print(escape(text), highlight=False)
    for note in result.notes:
        err.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    for path in result.files:
        out.print(f"wrote {path}", highlight=False)


def print_render(result) -> None:
    """Print what ``render`` wrote: per view its video, and the views that failed."""
    drawn = f" with {result.group}" if result.group else " (detections only: no 3-D group)"
    out.print(
        escape(f"{result.store}: {len(result.videos)} view(s) rendered{drawn}, "
               f"{result.tasks} tasks"),
        highlight=False,
    )  # fmt: skip
    for view, why in result.failed.items():
        err.print(f"[red]failed:[/] {escape(view)}: {escape(why)}", highlight=False)
    for path in result.videos.values():
        out.print(f"wrote {path}", highlight=False)
