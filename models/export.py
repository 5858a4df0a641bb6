"""Export a trained checkpoint to ONNX, write its SHA-256, and check it against torch.

The graph has two named inputs, ``golden`` and ``unit`` (float32, ``(N, 3, H, W)``, RGB in
[0, 1], registered and colour-calibrated), and one output, ``logits`` (``(N, 1, H, W)``); batch,
height and width are dynamic. Opset 17. The model's name and format version are stored in the
ONNX metadata, which the runtime (:mod:`vision.defect_model`) checks.

Usage::

    python -m models.export models/runs/full/last.pt            # -> models/defect_model.onnx
    python -m models.export CHECKPOINT --out /tmp/m.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ONNX = REPO / "models" / "defect_model.onnx"
MODEL_NAME = "sealcheck-defect-unet"
FORMAT_VERSION = "1"
"""Bumped when the inputs, outputs or their meaning change; the runtime refuses other versions."""
OPSET = 17


def load_checkpoint(path: str | Path):
    """The :class:`DefectNet` stored in a training checkpoint, in eval mode, and its state."""
    import torch

    from models.network import DefectNet

    state = torch.load(path, map_location="cpu", weights_only=False)
    config = state["config"]
    # Checkpoints from before the finer envelopes (model v1 of 2026-11) have the coarse one only;
    # those from before the shift search (2026-11-27 afternoon) have none.
    model = DefectNet(tuple(config["widths"]),
                      envelope_cells=tuple(config.get("envelope_cells", (5,))),
                      shift_search=tuple(config.get("shift_search", (0, 0))))
    model.load_state_dict(state["model"])
    return model.eval(), state


def export(checkpoint: str | Path, out: str | Path = DEFAULT_ONNX) -> Path:
    """Write ``out`` (.onnx) and ``out.sha256``; return the .onnx path."""
    import onnx
    import torch

    model, state = load_checkpoint(checkpoint)
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"expected an output path ending in .onnx, got {out}")
    example = (torch.rand(1, 3, 96, 128), torch.rand(1, 3, 96, 128))
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript; this small static graph exports the same either way.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, example, str(out), input_names=["golden", "unit"], output_names=["logits"],
            dynamic_axes={"golden": axes, "unit": axes, "logits": axes}, opset_version=OPSET,
            do_constant_folding=True, dynamo=False,
        )
    graph = onnx.load(str(out))
    config = state["config"]
    metadata = {
        "name": MODEL_NAME,
        "format_version": FORMAT_VERSION,
        "widths": ",".join(str(w) for w in config["widths"]),
        "train_steps": str(state.get("step", "")),
        "train_minutes": f"{state.get('train_minutes', 0):.1f}",
        "inputs": "golden, unit: float32 (N,3,H,W) RGB 0-1, registered and colour-calibrated",
        "outputs": "logits: float32 (N,1,H,W); sigmoid gives the defect probability",
    }
    for key, value in metadata.items():
        graph.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(graph)
    onnx.save(graph, str(out))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")
    return out


def max_difference(checkpoint: str | Path, onnx_path: str | Path, *, height: int = 200,
                   width: int = 264, seed: int = 0) -> float:
    """Largest absolute logit difference between torch and onnxruntime on one random pair."""
    import onnxruntime
    import torch

    model, _ = load_checkpoint(checkpoint)
    rng = np.random.default_rng(seed)
    golden = rng.random((1, 3, height, width), dtype=np.float32)
    unit = np.clip(golden + rng.normal(0, 0.1, golden.shape).astype(np.float32), 0, 1)
    with torch.no_grad():
        expected = model(torch.from_numpy(golden), torch.from_numpy(unit)).numpy()
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"golden": golden, "unit": unit})
    return float(np.abs(got - expected).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--out", default=str(DEFAULT_ONNX))
    args = parser.parse_args(argv)
    out = export(args.checkpoint, args.out)
    size_mb = out.stat().st_size / 2**20
    print(f"wrote {out} ({size_mb:.2f} MB) and {out.name}.sha256")
    print(f"max |onnxruntime - torch| logit difference: {max_difference(args.checkpoint, out):.2e}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
