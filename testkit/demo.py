"""`make demo`: photograph a golden sample and a scratched unit printed a shade yellower.

The unit is photographed under a tungsten lamp with another phone; the colour cards in both
photos let sealcheck measure the print's drift, not the lamp's.

Writes the two photos to out/demo/ and runs `sealcheck compare` on them, so the demo exercises
the same path a user's photos take (files on disk -> decode -> pipeline -> report).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from testkit.scenes import CARD_WIDTH_MM, ILLUMINANTS, Camera, lab_shift, make_pair


def main() -> int:
    out = Path("out/demo")
    out.mkdir(parents=True, exist_ok=True)
    tungsten = Camera(illuminant=ILLUMINANTS["A (tungsten)"])
    grey = tungsten.sensor_matrix() @ np.ones(3)  # the lamp's colour on the sensor
    balance = (grey[1] / grey) ** 0.8  # an auto white balance that corrects 80 % of it
    unit_camera = dataclasses.replace(
        tungsten, rotation_deg=35.0, tilt_deg=12.0, tilt_azimuth_deg=60.0, fill=0.7,
        white_balance=tuple(balance), exposure=0.85 / float((grey * balance).max()), gamma=2.2,
        noise_sigma=2.0, jpeg_quality=90)
    pair = make_pair("astronaut", unit_camera=unit_camera, drift=lab_shift(0.0, 1.5, 2.5),
                     defects=(("scratch", 20.0),), seed=7)
    for name, image in (("golden.jpg", pair.golden), ("unit.jpg", pair.unit)):
        cv2.imwrite(str(out / name), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    x, y, w, h = pair.roi
    (out / "spec.yaml").write_text(
        f"roi: [{x}, {y}, {w}, {h}]\ntolerances:\n  delta_e00: 2.0\n"
        f"chart:\n  width_mm: {CARD_WIDTH_MM:.2f}\n")
    print(f"demo pair written to {out}/ (golden.jpg, unit.jpg, spec.yaml); the truth: "
          f"Delta-E00 {pair.true_delta_e00:.2f} of printed colour, a 20 mm scratch\n",
          flush=True)
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
