"""`make demo`: photograph a golden sample and a scratched unit printed a shade yellower.

Writes the two photos to out/demo/ and runs `sealcheck compare` on them, so the demo exercises
the same path a user's photos take (files on disk -> decode -> pipeline -> report).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2

from tests.helpers.scenes import Camera, lab_shift, make_pair


def main() -> int:
    out = Path("out/demo")
    out.mkdir(parents=True, exist_ok=True)
    unit_camera = Camera(rotation_deg=35.0, tilt_deg=12.0, tilt_azimuth_deg=60.0, fill=0.7,
                         exposure=1.0, noise_sigma=2.0, jpeg_quality=90)
    pair = make_pair("astronaut", unit_camera=unit_camera, drift=lab_shift(0.0, 1.5, 2.5),
                     defects=(("scratch", 20.0),), seed=7)
    for name, image in (("golden.jpg", pair.golden), ("unit.jpg", pair.unit)):
        cv2.imwrite(str(out / name), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    x, y, w, h = pair.roi
    (out / "spec.yaml").write_text(f"roi: [{x}, {y}, {w}, {h}]\ntolerances:\n  delta_e00: 2.0\n")
    print(f"demo pair written to {out}/ (golden.jpg, unit.jpg, spec.yaml)\n", flush=True)
    command = [str(Path(sys.executable).with_name("sealcheck")), "compare",
               str(out / "golden.jpg"), str(out / "unit.jpg"), "--spec", str(out / "spec.yaml"),
               "--out", str(out / "report")]
    print("$ " + " ".join(command), flush=True)
    code = subprocess.call(command)
    print(f"\nexit code {code}; pictures in {out}/report/ (overlay.png, defect_map.png, "
          "aligned_unit.png)")
    return 0 if code in (0, 1, 3) else code


if __name__ == "__main__":
    sys.exit(main())
