"""The report's pictures read on a phone (issue 26): the overlay's numbers stay legible when
the picture is shown ~360 px wide, and the heat map is plain to see, on the overlay and on the
report page's heat layer (one colouring, vision.render.heat_rgba)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vision.render import heat_rgba, overlay
from vision.report import DefectRegion

PHONE_WIDTH_PX = 360  # the report's pictures on a 390 px phone, inside the card's padding
MIN_LEGIBLE_PX = 12  # a digit shorter than this on the screen is hard to read at arm's length


def _picture(size=(1024, 768)):
    w, h = size
    golden = np.full((h, w, 3), 140, np.uint8)
    golden[:, : w // 2] = (60, 90, 40)  # a dark half: the label must read on either
    return golden


@pytest.mark.parametrize("size", [(1024, 768), (4000, 3000), (1000, 750)])
@pytest.mark.parametrize("severity", ["critical", "major", "minor"])
def test_a_defect_number_is_legible_when_the_overlay_is_shown_phone_wide(size, severity):
    golden = _picture(size)
    w, h = size
    box = (w // 2 - w // 40, h // 2, w // 20, h // 20)
    region = DefectRegion(bbox=box, area_px=box[2] * box[3], score=0.9, severity=severity,
                          kind="structure")
    drawn = overlay(golden, np.zeros((h, w), np.uint8), [region], None, np.ones((h, w), bool))
    shown = cv2.resize(drawn, (PHONE_WIDTH_PX, round(PHONE_WIDTH_PX * h / w)),
                       interpolation=cv2.INTER_AREA)
    base = cv2.resize(golden, shown.shape[1::-1], interpolation=cv2.INTER_AREA)
    # The number's tag: what changed above the box (the box's own lines are a few px).
    top = round(box[1] * PHONE_WIDTH_PX / w)
    changed = np.abs(shown.astype(int) - base.astype(int)).max(axis=2) > 60
    rows = np.flatnonzero(changed[:top].any(axis=1))
    assert rows.size and rows.max() - rows.min() + 1 >= MIN_LEGIBLE_PX, rows
    # The digit contrasts with its tag (dark on yellow/orange, white on crimson).
    tag = shown[rows.min():rows.max() + 1]
    spread = np.ptp(tag[changed[rows.min():rows.max() + 1]].astype(int).sum(axis=1))
    assert spread > 250, spread


def test_the_heat_map_is_plain_to_see_at_the_candidate_threshold_and_clear_below():
    likelihood = np.array([[0, 50, 128, 180, 255]], np.uint8)  # 0, 0.2, 0.5, 0.7, 1.0
    rgba = heat_rgba(likelihood)
    alpha = rgba[0, :, 3] / 255
    assert alpha[0] == alpha[1] == 0  # nothing where nothing changed
    assert alpha[2] >= 0.6  # the candidate threshold is clearly tinted
    assert alpha[3] >= 0.8 and alpha[4] >= 0.8
    assert tuple(rgba[0, 4, :3]) == (255, 0, 0)  # the strongest is red
    # On the overlay, a grey picture turns red where the likelihood is high.
    golden = np.full((1, 5, 3), 128, np.uint8)
    drawn = overlay(golden, likelihood, [], None, np.ones((1, 5), bool))
    assert drawn[0, 0].tolist() == [128, 128, 128]
    assert drawn[0, 4, 0] - drawn[0, 4, 1] >= 150
    assert drawn[0, 2, 0] - drawn[0, 2, 2] >= 100
