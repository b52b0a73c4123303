"""Run-length encoding, union mask -> nuclei, and the competition metric, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from unetpp.errors import UnetppError
from unetpp.evaluation.competition import THRESHOLDS, competition_score, iou_matrix, score_image, union_iou
from unetpp.evaluation.instances import label_instances
from unetpp.evaluation.rle import decode_labels, encode_labels, rle_decode, rle_encode


def test_rle_is_column_major_and_one_indexed():
    mask = np.array([[0, 1, 0], [1, 1, 0], [0, 0, 1]], bool)
    # Fortran order: column 0 = 0,1,0; column 1 = 1,1,0; column 2 = 0,0,1 -> pixels 2, 4-5, 9 (1-indexed)
    assert rle_encode(mask) == "2 1 4 2 9 1"
    assert rle_encode(np.array([[0, 1], [1, 0]], bool)) == "2 2"  # a run continues into the next column
    assert rle_encode(np.zeros((2, 3), bool)) == ""
    assert rle_encode(np.ones((2, 3), bool)) == "1 6"
    np.testing.assert_array_equal(rle_decode("2 1 4 2 9 1", (3, 3)), mask)
    assert not rle_decode("", (2, 2)).any()


def test_rle_decode_refuses_bad_strings():
    with pytest.raises(UnetppError, match="pairs"):
        rle_decode("1 2 3", (3, 3))
    with pytest.raises(UnetppError, match="outside"):
        rle_decode("8 3", (3, 3))
    with pytest.raises(UnetppError, match="outside"):
        rle_decode("0 1", (3, 3))
    with pytest.raises(UnetppError, match="overlaps"):
        decode_labels(["1 3", "3 2"], (3, 3))


def test_labels_round_trip():
    labels = np.array([[1, 1, 0, 2], [0, 0, 0, 2], [3, 0, 0, 0]], np.uint16)
    strings = encode_labels(labels)
    assert strings == ["1 1 4 1", "10 2", "3 1"]
    np.testing.assert_array_equal(decode_labels(strings, labels.shape), labels)


def two_touching_discs() -> np.ndarray:
    yy, xx = np.mgrid[:40, :60]
    return ((yy - 20) ** 2 + (xx - 18) ** 2 <= 100) | ((yy - 20) ** 2 + (xx - 38) ** 2 <= 100)


def test_cc_joins_touching_nuclei_and_watershed_splits_them():
    mask = two_touching_discs()
    cc = label_instances(mask, "cc", min_size=0)
    assert cc.dtype == np.uint16 and cc.max() == 1
    ws = label_instances(mask, "watershed", min_distance=5, min_size=0)
    assert ws.max() == 2 and ((ws > 0) == mask).all()
    left, right = ws[20, 10], ws[20, 46]
    assert {left, right} == {1, 2}
    assert (ws[:, :27] != right).all() and (ws[:, 30:] != left).all()  # the cut lies at the neck, x = 28
    # a min_distance larger than the two centres' spacing (20 px) keeps one peak, so one object
    assert label_instances(mask, "watershed", min_distance=25, min_size=0).max() == 1


def test_min_size_diagonal_contact_and_raster_order():
    mask = np.zeros((6, 8), bool)
    mask[0, 6] = True  # 1 pixel: speckle
    mask[1:3, 1:3] = True  # 4 pixels
    mask[3:5, 3:6] = True  # 6 pixels, touching the square only at a corner
    labels = label_instances(mask, "cc", min_size=0)
    assert labels.max() == 3 and labels[0, 6] == 1 and labels[1, 1] == 2 and labels[3, 3] == 3
    kept = label_instances(mask, "cc", min_size=5)
    assert kept.max() == 1 and kept[3, 3] == 1 and kept[1, 1] == 0 and kept[0, 6] == 0
    np.testing.assert_array_equal(label_instances(mask, "watershed", min_size=5), kept)
    assert label_instances(np.zeros((4, 4), bool), "watershed").max() == 0
    with pytest.raises(ValueError, match="unknown"):
        label_instances(mask, "blobs")


def rect(shape, r0, r1, c0, c1, value=1) -> np.ndarray:
    out = np.zeros(shape, np.uint16)
    out[r0:r1, c0:c1] = value
    return out


def test_thresholds():
    np.testing.assert_allclose(THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


def test_iou_matrix_by_hand():
    truth = rect((6, 6), 0, 2, 0, 5)  # 10 px
    truth[4:6, 0:2] = 2  # 4 px
    pred = rect((6, 6), 0, 2, 0, 4, 7)  # 8 px inside object 1; label 7: ids need not be 1..n
    pred[4:6, 1:3] = 3  # 4 px, 2 of them on object 2
    ious = iou_matrix(truth, pred)
    # rows: truth 1, 2; columns: pred 3, 7 (sorted ids)
    np.testing.assert_allclose(ious, [[0.0, 8 / 10], [2 / 6, 0.0]])


def test_competition_metric_by_hand():
    shape = (10, 10)
    truth = rect(shape, 0, 2, 0, 5)  # object of 10 px
    assert competition_score(truth, truth) == 1.0
    # IoU 8/10 = 0.8: a match at 0.50..0.75 (6 thresholds), not at 0.80 (IoU must exceed t) -> 6/10
    pred = rect(shape, 0, 2, 0, 4)
    assert competition_score(truth, pred) == pytest.approx(0.6)
    assert union_iou(truth, pred) == pytest.approx(0.8)
    # two true objects; one found exactly, one missed, one spurious object: TP 1, FP 1, FN 1 -> 1/3 everywhere
    truth2 = truth.copy()
    truth2[5:7, 0:5] = 2
    pred2 = truth.copy()
    pred2[8:10, 6:10] = 5
    assert competition_score(truth2, pred2) == pytest.approx(1 / 3)
    # a prediction that merges two 10 px objects into one 20 px object: IoU 0.5 with each, never > 0.5 -> 0
    truth3 = truth.copy()
    truth3[2:4, 0:5] = 2
    assert competition_score(truth3, rect(shape, 0, 4, 0, 5)) == 0.0
    assert union_iou(truth3, rect(shape, 0, 4, 0, 5)) == 1.0
    # IoU 0.9 (object 9 px of 10): t = 0.50..0.85 match (8 of 10); with one FP of 1 px: 8 * (1/2) / 10 = 0.4
    pred4 = rect(shape, 0, 2, 0, 5)
    pred4[1, 4] = 0
    assert competition_score(truth, pred4) == pytest.approx(0.8)
    pred4[9, 9] = 2
    assert competition_score(truth, pred4) == pytest.approx(0.4)
    empty = np.zeros(shape, np.uint16)
    assert competition_score(empty, empty) == 1.0 and competition_score(truth, empty) == 0.0
    assert competition_score(empty, truth) == 0.0
    score = score_image(truth2, pred2)
    assert (score.n_true, score.n_pred) == (2, 2) and score.union_iou == pytest.approx(10 / 28)


def test_fast_label_encoding_equals_one_mask_at_a_time():
    """encode_labels works from bounding boxes; it must give exactly what rle_encode gives per object."""
    rng = np.random.default_rng(0)
    for _ in range(100):
        labels = rng.integers(0, 5, size=rng.integers(1, 12, size=2)).astype(np.uint16)
        assert encode_labels(labels) == [rle_encode(labels == k) for k in np.unique(labels) if k]
    tall = np.zeros((3, 2), np.uint16)
    tall[2, 0] = tall[0, 1] = 4  # a run from the bottom of column 0 into the top of column 1; labels 1-3 unused
    assert encode_labels(tall) == ["3 2"]
