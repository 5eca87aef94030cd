"""What fusing a policy changes against torchvision running its ops one at a time
(tests/policy_replay.py replays each sample's draws): nothing beyond rounding where
the order is kept and one resampling happens; the README's figures come from here."""

from __future__ import annotations

import numpy as np

from tests.photos import photo_batch
from tests.policy_replay import GEOMETRIC, replay


def test_one_op_samples_are_torchvisions_op_within_rounding():
    r = replay({"op": "trivial_augment_wide"}, photo_batch(96))
    assert not r.reordered.any()
    assert r.mean_abs.max() < 1.0
    assert np.median(r.mean_abs) < 0.05


def test_fused_rand_augment_against_one_op_at_a_time():
    """Kept order and at most one warp: rounding. Two geometric ops: one resampling
    where torchvision does two. A non-geometric op drawn before a geometric one runs
    after it here: the bulk of the difference, largest for a histogram op (which
    then sees the warp's fill)."""
    r = replay({"op": "rand_augment", "magnitude": 9}, photo_batch(160))
    one_warp = np.array([sum(n in GEOMETRIC for n in names) <= 1 for names in r.names])
    plain = one_warp & ~r.reordered
    assert plain.sum() > 60 and r.reordered.sum() > 10
    assert np.median(r.mean_abs[plain]) < 0.1
    assert r.mean_abs[plain].mean() < 1.0
    assert r.mean_abs[r.reordered].mean() > r.mean_abs[plain].mean()
