"""Registration: the homography that puts a unit photo onto the golden photo.

Phone photos of a flat product differ by a homography: any in-plane rotation, zoom, tilt. The
pipeline here is the textbook one, with the checks that make it trustworthy on real photos:

1. SIFT (Lowe 2004) on a working-resolution copy of both photos: rotation- and
   scale-invariant, and its normalised descriptors shrug off exposure and white balance.
   Detected first on copies half that size (a quarter of the cost); steps 2-5 run again on
   the working copies' own features when those register the unit with few inliers.
2. Lowe's ratio test, then MAGSAC++ (Barath et al. 2020) for the homography.
3. Guided matching: with that first homography, every unit feature is matched again among
   the golden features near where it should land, which recovers the correct matches the
   global ratio test threw away on repetitive or low-contrast texture.
4. Sanity: orientation preserved (a photo is never mirrored), plausible zoom, enough inliers,
   and inliers spread over the golden's textured area. The last one matters: two different
   products photographed beside the same colour card match perfectly *on the card*, and a
   count of inliers alone would call that a registration. (The cards are also masked out of
   matching altogether: they move between photo sessions.)
5. Template refinement at up to FINE_SIZE: golden patches around well-spread inliers are
   found in the warped unit by normalised cross-correlation with a sub-pixel peak, and the
   homography is fitted again. Features alone leave ~1 px errors at the product's corners.
6. Near-aligned fallback for same-size photos whose features do not match (binarised
   circuits): phase correlation for the shift, then the same template refinement on corners.
7. Identity check: on repetitive patterns (circuits, fabric) matching can lock onto a
   neighbouring period, and images from a fixture are often already aligned. When the two
   photos have the same size, the identity is scored like any other candidate and kept when it
   fits at least as well.
8. Outline fallback, only when nothing above registered: products whose own texture gives
   too few distinctive features (a smooth gradient, a fine fabric) still have a distinctive
   silhouette on the table. The product's outline quadrilateral is found in both photos
   (the largest non-table blob inside the table, colour cards ignored); its four corner
   pairings are candidates, refined coarse to fine by ECC (Evangelidis & Psarakis 2008),
   and kept only if the products' insides then correlate (two different rectangular
   products have matching outlines, not matching contents).
   Then, when that does not register it either, the shape fallback (rounded outlines and
   textureless insides: moulded parts, bent brushed steel): the whole silhouette's moments
   and an ECC fit of the silhouettes, then ECC on the edges inside (the gradient's
   magnitude, which a change of light direction moves least), kept only if the silhouettes
   coincide, the inner edges correlate tile by tile, no other turn fits nearly as well, and
   the fit scores clearly better than the same fit a few pixels away. Each edge fit is
   refitted on the outline's chromaticity, which a change of light does not move
   (``_chroma``).
9. Lift the homography to full resolution.

The homography maps unit pixels to golden pixels of the full-resolution, EXIF-oriented photos.

The steps live in private modules that each read on their own: ``_features`` (the working and
fine copies and their SIFT features: step 1), ``_matching`` (steps 2 and 3), ``_checks`` (the
plausibility of step 4 and the high-pass alignment score of steps 6 to 8), ``_templates``
(step 5), ``_silhouette`` (the product on the table, which bounds the feature detection and
gives :func:`product_mask`), ``_outline``, ``_shape`` and ``_chroma`` (step 8) and
``_registration`` (:func:`register`, which runs the steps in this order and holds the
coverage check of step 4 and steps 6, 7 and 9, and :func:`warp_to_golden`).

References
----------
Lowe, D. G. (2004). Distinctive image features from scale-invariant keypoints. IJCV 60(2),
91-110. doi:10.1023/B:VISI.0000029664.99615.94
Barath, D., Noskova, J., Ivashechkin, M., & Matas, J. (2020). MAGSAC++, a fast, reliable and
accurate robust estimator. CVPR 2020. doi:10.1109/CVPR42600.2020.00138
Kuglin, C. D., & Hines, D. C. (1975). The phase correlation image alignment method. Proc.
IEEE Int. Conf. on Cybernetics and Society, 163-165.
Hu, M.-K. (1962). Visual pattern recognition by moment invariants. IRE Trans. Information
Theory 8(2), 179-187. doi:10.1109/TIT.1962.1057692
Evangelidis, G. D., & Psarakis, E. Z. (2008). Parametric image alignment using enhanced
correlation coefficient maximization. IEEE TPAMI 30(10), 1858-1865.
doi:10.1109/TPAMI.2008.113
"""

from vision.register._features import (
    FINE_SIZE,
    WORKING_SIZE,
    GoldenFeatures,
    UnitFeatures,
    prepare_golden_features,
    prepare_unit_features,
)
from vision.register._registration import Registration, register, warp_to_golden
from vision.register._silhouette import product_mask

__all__ = [
    "FINE_SIZE",
    "WORKING_SIZE",
    "GoldenFeatures",
    "Registration",
    "UnitFeatures",
    "prepare_golden_features",
    "prepare_unit_features",
    "product_mask",
    "register",
    "warp_to_golden",
]
