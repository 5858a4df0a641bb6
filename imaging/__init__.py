"""The bottom layer: colour maths, resampling and homography geometry.

Calibration (:mod:`calibration`) and the comparison's stages (:mod:`vision`) import it; it
imports neither (``tests/test_architecture.py`` holds the layers).
"""
