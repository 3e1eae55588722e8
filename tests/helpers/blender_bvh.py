"""Import a BVH file with Blender's own importer and print its bones' heads, as JSON.

Run with the Python that has ``bpy`` (Blender as a module), not mocapflow's:
``python blender_bvh.py FILE.bvh FRAME [FRAME ...]`` (BVH frames, from 0). It
imports with ``bpy.ops.import_anim.bvh`` at its defaults (scale 1.0, forward -Z,
up Y, first frame 1) and prints ``{"version", "heads": {frame: {bone: [x, y,
z]}}}``: each pose bone's head in Blender's world (Z up), in metres.
"""

from __future__ import annotations

import json
import sys


def main(path: str, frames: list[int]) -> None:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    result = bpy.ops.import_anim.bvh(filepath=path)
    assert result == {"FINISHED"}, result
    arm = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
    heads: dict[int, dict[str, list[float]]] = {}
    for frame in frames:
        bpy.context.scene.frame_set(frame + 1)  # the importer starts at Blender's frame 1
        bpy.context.view_layer.update()
        heads[frame] = {pb.name: list(arm.matrix_world @ pb.head) for pb in arm.pose.bones}
    sys.stdout.write(json.dumps({"version": bpy.app.version_string, "heads": heads}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], [int(f) for f in sys.argv[2:]])
