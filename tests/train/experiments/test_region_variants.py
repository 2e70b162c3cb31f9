"""Region variants: registered beside their ablations, trained over a store with boxes, refused on one without."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from typer.testing import CliRunner

from tests.train.box_helpers import BOX_SLOTS
from train.cli import app
from train.experiments.variants import SWEEPS, VARIANTS, get_variant
from train.fitting.config import TrainConfig
from train.fitting.losses import PriorState, compute_losses
from train.fitting.splits import SplitSpec, make_folds
from train.fitting.trainer import new_model

REGION_VARIANTS = ("full_regions", "flow_regions_only")
CFG = TrainConfig(hidden=32, motion_dim=32, batch_size=4, device="cpu")


def test_each_region_variant_is_its_ablation_plus_the_region_encoder():
    assert {n for n in VARIANTS if get_variant(n).needs_regions} == set(REGION_VARIANTS)
    assert SWEEPS["regions"] == ("full", "full_regions", "flow_only", "flow_regions_only")
    for sweep, names in SWEEPS.items():  # every other sweep runs on a store without boxes
        assert sweep == "regions" or not set(names) & set(REGION_VARIANTS), sweep
    for name, ablation in (("full_regions", "full"), ("flow_regions_only", "flow_only")):
        v, a = get_variant(name), get_variant(ablation)
        assert v.model == {**a.model, "motion_encoder": "flow_regions"}
        assert dataclasses.replace(v, name=a.name, model=a.model, description=a.description) == a


@pytest.mark.parametrize("name", REGION_VARIANTS)
def test_a_region_variant_trains_its_region_parts(name, box_fs):
    fold = make_folds(SplitSpec("stratified", val_fraction=0.5), box_fs.labels)[0]
    model = new_model(box_fs, CFG, get_variant(name)).train()
    assert model.cfg.n_regions == BOX_SLOTS and model.cfg.needs_regions
    assert new_model(box_fs, CFG, get_variant("full")).cfg.n_regions == 0  # the ablation's config is unchanged
    state = PriorState.from_config(model.cfg).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = box_fs.batch(fold.train)
    for _ in range(2):  # the first step moves the zero-initialised interactor output, the second reaches past it
        opt.zero_grad()
        loss = compute_losses(model(batch), batch, state, model.cfg)["total"]
        assert torch.isfinite(loss)
        loss.backward()
        opt.step()
    grads = {n: p.grad for n, p in model.named_parameters() if n.startswith(("motion.slots.", "motion.pairs."))}
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert all(any(g.abs().sum() > 0 for n, g in grads.items() if n.startswith(p))
               for p in ("motion.slots.embed", "motion.slots.temporal", "motion.pairs.embed"))


def test_fgm_train_refuses_region_variants_on_a_store_without_boxes(tiny_store, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [tiny_store, "--sweep", "regions", "--epochs", "1", "--out", str(out),
                                      "--device", "cpu", "--quiet"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for part in ("full_regions, flow_regions_only", "made without a detector", "fgm-extract VIDEOS --out NEW_STORE "
                 "--detector hog", "new store", "--variants full,flow_only"):
        assert part in text, part
    assert not out.exists()  # refused before any folder, checkpoint or figure was written
