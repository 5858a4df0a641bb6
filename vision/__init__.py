"""The comparison of a unit photo with the golden sample's, as a pure library (no web or
database code): stages with typed results, run one way.

==========================  ===================================================================
stage                       module
==========================  ===================================================================
decode / load               :mod:`vision.decode` (formats, limits), :mod:`vision.load`
calibrate                   :mod:`vision.calibrate` (card + fit: :mod:`calibration`)
prepare each photo          :mod:`vision.prepare` (card, features, analysis copy, silhouette)
register                    :mod:`vision.register`
analysis frame and views    :mod:`vision.frame`, :mod:`vision.views`
measure                     :mod:`vision.measure` (colour, structure, defects, dimensions);
                            the defect model's runtime: :mod:`vision.defect_model`
judge                       :mod:`vision.judge`, :mod:`vision.severity`
report and pictures         :mod:`vision.report` (the schema), :mod:`vision.render`,
                            :mod:`vision.numbers` (how every number is printed)
==========================  ===================================================================

:func:`vision.compare.compare` runs them (:func:`~vision.compare.compare_side_by_side` on two
threads for a one-off comparison); :class:`vision.runner.StageRunner` times the stages and
runs the independent ones beside each other. The spec sheet is :mod:`vision.spec`. Colour
maths, resampling and homography geometry are the layer below, :mod:`imaging`.

Nothing is imported here, so ``import vision.spec`` stays light (the CLI answers ``--help``
without loading OpenCV).
"""
