"""The measurements, each a module: colour (:mod:`.colour`), structure (:mod:`.structure`,
SSIM), defects (:mod:`.defects`: the maps and the ONNX model) and dimensions
(:mod:`.dimensions`, on the colour card's plane)."""
