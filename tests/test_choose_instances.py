"""benchmarks/choose_instances.py on the tiny synthetic set: a row per candidate, the same scores as by hand."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from helpers_inference import write_model
from unetpp.evaluation.competition import score_image
from unetpp.evaluation.instances import label_instances
from unetpp.inference.predict_images import load_native_predictor

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "choose_instances.py"


def load_script():
    spec = importlib.util.spec_from_file_location("choose_instances", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_choose_instances_scores_every_candidate(tmp_path, synthetic_interim_h5, synthetic_split_json, capsys):
    script = load_script()
    model = tmp_path / "model.pt"
    write_model(model, "unet", seed=3)
    candidates = (("cc", 1, 0), ("watershed", 3, 5))
    rows = script.choose(model, synthetic_interim_h5, synthetic_split_json, candidates=candidates, device="cpu")
    val = json.loads(synthetic_split_json.read_text())["val"]
    assert [r["method"] for r in rows] == ["cc", "watershed"] and all(r["n_images"] == len(val) == 3 for r in rows)
    predictor = load_native_predictor(model, "resize", device="cpu")  # as the script loads it
    with h5py.File(synthetic_interim_h5) as h5:
        expected = []
        for image_id in val:
            mask = predictor.probabilities(h5["images"][image_id][()]) > 0.5
            expected.append(score_image(h5["labels"][image_id][()], label_instances(mask, "watershed", 3, 5)))
    assert rows[1]["competition"] == pytest.approx(np.mean([s.competition for s in expected]))
    assert rows[1]["union_iou"] == pytest.approx(np.mean([s.union_iou for s in expected]))
    out = tmp_path / "rows.json"
    script.main(["--model", str(model), "--interim", str(synthetic_interim_h5), "--split", str(synthetic_split_json),
                 "--device", "cpu", "--json", str(out)])
    printed = capsys.readouterr().out
    assert printed.startswith("| method |") and printed.count("\n| ") == len(script.CANDIDATES)
    assert len(json.loads(out.read_text())) == len(script.CANDIDATES)


def test_oracle_scores_the_true_union_mask(synthetic_interim_h5, synthetic_split_json):
    rows = load_script().choose(None, synthetic_interim_h5, synthetic_split_json, candidates=(("cc", 1, 0),))
    assert rows[0]["union_iou"] == 1.0  # the true foreground itself
    val = json.loads(synthetic_split_json.read_text())["val"]
    with h5py.File(synthetic_interim_h5) as h5:
        expected = [score_image(h5["labels"][i][()], label_instances(h5["labels"][i][()] > 0, "cc", 1, 0)) for i in val]
    assert rows[0]["competition"] == pytest.approx(np.mean([s.competition for s in expected]))
