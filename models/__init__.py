"""The defect model's whole life: network, synthetic training data, training, ONNX export.

The exported ``defect_model.onnx`` (with its ``.sha256``) ships in this package; the runtime that
loads it is :mod:`vision.defect_model`, which needs onnxruntime only. Training and export need the
``train`` extra (torch). See ``MODEL_CARD.md``.
"""
