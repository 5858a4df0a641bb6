"""The evaluation's box matching (testkit.metrics): what counts as a region found on a defect."""

from __future__ import annotations

import pytest

from testkit.metrics import box_iou, boxes_match, match_boxes


def test_iou_of_known_boxes():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_deeppcb_rule_needs_more_than_a_third():
    truth = (100, 100, 30, 30)
    assert boxes_match((100, 100, 30, 30), truth, "iou33") == 1.0
    # A tight 10 x 10 region inside the annotator's 30 x 30 box: IoU 0.11, on the defect.
    tight = (110, 110, 10, 10)
    assert boxes_match(tight, truth, "iou33") == 0.0
    assert boxes_match(tight, truth, "on_defect") > 0
    # Beside the defect, touching it: neither rule.
    beside = (131, 100, 30, 30)
    assert boxes_match(beside, truth, "on_defect") == 0.0


def test_one_region_per_truth_box_and_one_truth_box_per_region():
    truth = [(0, 0, 20, 20), (100, 100, 20, 20)]
    regions = [(0, 0, 20, 20), (2, 2, 18, 18), (300, 300, 10, 10)]
    pairs = match_boxes(regions, truth, rule="on_defect")
    assert pairs == [(0, 0)]  # the second region on the same defect is a false region
    big = [(0, 0, 120, 120)]  # one box over both defects finds at most one of them
    assert len(match_boxes(big, truth, rule="on_defect")) == 1


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="rule must be"):
        boxes_match((0, 0, 1, 1), (0, 0, 1, 1), "iou50")
