"""Several LAMs trained as one computation (``train_together``): each ends bitwise where it would alone.

The property is checked over random mixes of every variant (learned or identity FDM path, free
or tied IDM, augmentation, action head with a weight or with §7 masking, horizon, context
window), latent sizes in different padding buckets, equal and different seeds and systems, runs
split across calls and across block boundaries, and checkpoints taken inside a batch.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamproof.lam import LAMSpec
from lamproof.numeric.trainer import (
    LATENT_BUCKET,
    Trainer,
    padded_width,
    train_together,
)
from lamproof.systems import System, paper_system


def _system(seed: int, d_o: int = 5, d_a: int = 2) -> System:
    rng = np.random.default_rng(seed)
    root = rng.standard_normal((d_o, d_o))
    return System(
        rng.standard_normal((d_o, d_a)),
        obs_mean=rng.standard_normal(d_o),
        dynamics=np.eye(d_o) + 0.2 * rng.standard_normal((d_o, d_o)),
        policy_gain=0.2 * rng.standard_normal((d_a, d_o)),
        noise_cov=0.3 * root @ root.T,
    )


#: Per member: what a sweep varies (drawn for each member) and what it usually shares (drawn once
#: per mix, and overridden for some members), so that most mixes stack several members.
_VARIED = {
    "d_z": st.integers(1, 5),
    "augmentation": st.sampled_from([0.0, 0.3, 0.7]),
    "action_loss_weight": st.sampled_from([0.0, 0.5, 1.3]),
    "labeled_fraction": st.sampled_from([None, 0.4, 0.8]),
}
_SHARED = {
    "fdm_obs_path": st.sampled_from(["learned", "identity"]),
    "idm": st.sampled_from(["free", "tied"]),
    "horizon": st.sampled_from([1, 2]),
    "context": st.sampled_from([1, 1, 2]),
    "system": st.sampled_from([0, 1]),
    "seed": st.sampled_from([0, 3]),
    "lr": st.sampled_from([1e-3, 1e-2]),
}


@st.composite
def mixes(draw, min_size=2, max_size=6):
    base = {name: draw(strategy) for name, strategy in {**_SHARED, **_VARIED}.items()}
    out = []
    for _ in range(draw(st.integers(min_size, max_size))):
        member = dict(base)
        if draw(st.booleans()) and draw(st.booleans()):  # a quarter of the members differ in one shared field
            name = draw(st.sampled_from(sorted(_SHARED)))
            member[name] = draw(_SHARED[name])
        member["d_z"] = draw(_VARIED["d_z"])
        for name in (
            "augmentation",
            "action_loss_weight",
            "labeled_fraction",
        ):  # each varied in half the members
            if draw(st.booleans()):
                member[name] = draw(_VARIED[name])
        out.append(member)
    return out


def _spec(member: dict) -> LAMSpec:
    return LAMSpec(
        member["d_z"],
        member["fdm_obs_path"],
        member["idm"],
        member["augmentation"],
        member["action_loss_weight"],
        horizon=member["horizon"],
        context=member["context"],
    )


def _build(member: dict) -> Trainer:
    return Trainer(
        _system(member["system"]),
        _spec(member),
        seed=member["seed"],
        batch_size=6,
        sample_block=3,
        lr=member["lr"],
        labeled_fraction=member["labeled_fraction"],
    )


def _same(a: Trainer, b: Trainer) -> None:
    assert a.step_count == b.step_count
    for name in ("theta", "adam_m", "adam_v"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.last_loss, b.last_loss, equal_nan=True)


@settings(max_examples=25, deadline=None)
@given(mix=mixes(), split=st.integers(1, 10), order=st.randoms())
def test_a_batch_ends_bitwise_where_each_member_ends_alone(mix, split, order):
    steps = 11  # crosses three block boundaries of 3 steps
    alone = [_build(m).run(steps) for m in mix]
    together = [_build(m) for m in mix]
    shuffled = list(together)
    order.shuffle(shuffled)
    train_together(shuffled, split)
    train_together(together, steps - split)
    for a, b in zip(alone, together, strict=True):
        _same(a, b)


@settings(max_examples=10, deadline=None)
@given(mix=mixes(max_size=4), split=st.integers(1, 10))
def test_checkpoints_taken_in_a_batch_resume_alone_and_together(tmp_path_factory, mix, split):
    steps = 12
    alone = [_build(m).run(steps) for m in mix]
    together = [_build(m) for m in mix]
    train_together(together, split)
    folder = tmp_path_factory.mktemp("ckpt")
    resumed = []
    for i, (member, trainer) in enumerate(zip(mix, together, strict=True)):
        np.savez(folder / f"{i}.npz", **trainer.state())
        with np.load(folder / f"{i}.npz") as state:
            resumed.append(Trainer.from_state(_system(member["system"]), _spec(member), state))
    train_together(resumed[: len(resumed) // 2], steps - split)  # half of them together ...
    for trainer in resumed[len(resumed) // 2 :]:  # ... and the rest alone
        trainer.run(steps - split)
    for a, b in zip(alone, resumed, strict=True):
        _same(a, b)


@pytest.mark.parametrize("head", [False, True])
def test_a_sweep_at_the_papers_size_is_bitwise_its_members_alone(head):
    """At d_o = 128, batch 128 (the paper's shapes, where BLAS runs its full-size kernels rather
    than the small ones of the property tests above): the band's side-by-side products (eight
    latent sizes in four padding buckets, one or two members per stack) leave every member
    bitwise where it ends alone."""
    system = paper_system(noise="isotropic", sigma=0.5)
    weight = 1.0 if head else 0.0
    specs = [LAMSpec(d, action_loss_weight=weight) for d in (1, 3, 4, 5, 8, 10, 13, 16)]
    alone = [Trainer(system, spec, seed=2, sample_block=4).run(6) for spec in specs]
    together = [Trainer(system, spec, seed=2, sample_block=4) for spec in specs]
    train_together(together, 6)
    for a, b in zip(alone, together, strict=True):
        _same(a, b)


def test_members_at_different_steps_catch_up():
    """A batch whose members stand at different steps (an interrupted sweep) still ends bitwise."""
    spec = LAMSpec(2, augmentation=0.1)
    alone = Trainer(_system(0), spec, seed=1, batch_size=6, sample_block=3).run(9)
    other = Trainer(_system(0), LAMSpec(3), seed=1, batch_size=6, sample_block=3).run(9)
    late = Trainer(_system(0), spec, seed=1, batch_size=6, sample_block=3).run(4)
    early = Trainer(_system(0), LAMSpec(3), seed=1, batch_size=6, sample_block=3)
    train_together([late], 5)
    train_together([early], 9)
    _same(alone, late)
    _same(other, early)


def test_same_seed_same_minibatches_whatever_the_lam():
    """Common random numbers: the data stream does not depend on d_z, augmentation or the head."""
    system = _system(0)
    a = Trainer(system, LAMSpec(1), seed=5, batch_size=6)
    b = Trainer(
        system,
        LAMSpec(4, augmentation=0.2, action_loss_weight=1.0),
        seed=5,
        batch_size=6,
        labeled_fraction=0.3,
    )
    for _ in range(40):
        x, y = a._next_batch(), b._next_batch()
        for name in ("obs", "next_obs", "action"):
            assert np.array_equal(x[name], y[name])
    c = Trainer(system, LAMSpec(1), seed=6, batch_size=6)
    assert not np.array_equal(
        c._next_batch()["obs"], Trainer(system, LAMSpec(1), seed=5, batch_size=6)._next_batch()["obs"]
    )


def test_padded_units_stay_zero_and_the_real_ones_train():
    system = _system(1)
    spec = LAMSpec(1, action_loss_weight=0.5)
    trainer = Trainer(system, spec, seed=0, batch_size=8)
    assert padded_width(1) == LATENT_BUCKET
    start = trainer.params
    trainer.run(200)
    full = trainer.layout.views(trainer.theta)
    assert (
        not np.any(full["idm"][1:])
        and not np.any(full["fdm"][:, system.d_o + 1 :])
        and not np.any(full["head"][:, 1:])
    )
    assert not np.allclose(trainer.params.B, start.B)
    assert trainer.params.B.shape == (system.d_o, 1)


def test_a_mismatched_checkpoint_is_refused():
    system = _system(0)
    state = Trainer(system, LAMSpec(2, augmentation=0.1), seed=0).state()
    with pytest.raises(ValueError, match="^state:"):
        Trainer.from_state(system, LAMSpec(2), state)


# -- the runner: a d_z sweep trained as one batch -------------------------------------------------
def _small_sweep():
    from lamproof.studies import get_study

    # two d_z sweeps (σ = 1, 2) of three latent sizes in two padding buckets
    return get_study("4.3").with_axes(do=8, da=2, db=2, dz=[1, 3, 5], sigma=[1.0, 2.0])


def test_the_runner_trains_each_sweep_as_one_batch_with_rows_equal_to_training_alone(tmp_path, monkeypatch):
    """``reproduce --mode trained``'s groups: one per d_z sweep; each configuration's row and
    checkpoint are those of training it alone, also when one member was interrupted alone first."""
    from lamproof.studies import TrainingSettings, runner

    study = _small_sweep()
    configs = study.configs()
    groups = runner.training_groups(study, configs)
    assert sorted(len(g) for g in groups) == [3, 3]
    assert all(len({c["sigma"] for c in g}) == 1 for g in groups)
    settings = TrainingSettings(steps=70, checkpoint_every=30)

    alone = [
        runner.train_group(study, [c], settings, tmp_path / f"alone{i}")[0][0] for i, c in enumerate(configs)
    ]

    calls = []

    def counting(trainers, steps, progress=None):
        calls.append(len(trainers))
        return train_together(trainers, steps, progress)

    monkeypatch.setattr(Trainer, "train_together", staticmethod(counting))
    batched = runner.run_trained(
        study, tmp_path / "batched", settings, stream=open(os.devnull, "w"), workers=1
    )
    assert max(calls) == 3  # a sweep's three members as one computation
    for row, expected in zip(batched.frame.to_dict("records"), alone, strict=True):
        assert _rows_equal(row, expected)

    # one member interrupted alone at step 45 (checkpoint at 30); the sweep then catches it up
    folder = tmp_path / "interrupted" / runner.CHECKPOINT_DIR / study.slug
    sweep, member = groups[0], groups[0][1]

    class Stop(Exception):
        pass

    def stop_at_45(step, total, loss):
        if step >= 45:
            raise Stop

    with pytest.raises(Stop):
        runner.train_group(study, [member], settings, folder, progress=stop_at_45)
    rows = runner.train_group(study, sweep, settings, folder)
    expected = {c.key: row for c, row in zip(configs, alone, strict=True)}
    for config, (row, how) in zip(sweep, rows, strict=True):
        assert how == (" (resumed at step 30)" if config is member else "")
        assert _rows_equal(row, expected[config.key])


def _rows_equal(a: dict, b: dict) -> bool:
    import math

    keys = set(a) | set(b)
    return all(
        a.get(k) == b.get(k)
        or (isinstance(a.get(k), float) and math.isnan(a[k]) and b.get(k) is None)
        or (a.get(k) is None and isinstance(b.get(k), float) and math.isnan(b[k]))
        for k in keys
    )


def test_a_pooled_run_reports_progress_and_equals_the_serial_run(tmp_path):
    """Workers send their batch's step to the lead process (``_trained_task``'s queue); the pooled
    rows equal the serial ones, and off a terminal the bar writes a line per heartbeat."""
    import io
    import queue

    from lamproof.studies import TrainingSettings, runner

    study = _small_sweep()
    settings = TrainingSettings(steps=40, checkpoint_every=20)
    reports = queue.Queue()
    group = runner.training_groups(study, study.configs())[0]
    runner._trained_task((study, group, settings, tmp_path / "task"), reports, 7)
    sent = []
    while not reports.empty():
        sent.append(reports.get())
    assert sent and sent[-1][:3] == (7, 40, 40)  # the last step is always reported
    assert [s[1] for s in sent] == sorted(s[1] for s in sent)

    serial = runner.run_trained(study, tmp_path / "serial", settings, stream=io.StringIO(), workers=1)
    log = io.StringIO()
    pooled = runner.run_trained(study, tmp_path / "pooled", settings, stream=log, workers=2)
    for row, expected in zip(pooled.frame.to_dict("records"), serial.frame.to_dict("records"), strict=True):
        assert _rows_equal(row, expected)
    assert log.getvalue().count(" done") == len(study.configs())

    bar = runner.ProgressBar("trained", 4, io.StringIO())
    bar.update(0, 10, 100, 0.5)  # within the first heartbeat: silent off a terminal
    assert bar.stream.getvalue() == ""
    bar.HEARTBEAT_SECONDS = 0.0
    bar.update(1, 50, 100, 0.25)
    assert bar.stream.getvalue().startswith("trained: 37.5%  config 2/4  step 50/100  loss 2.500e-01")
