"""Region motion tokens: untrained it is the flow encoder, invalid slots are never read, gradients reach its MLPs."""

from __future__ import annotations

import json

import pytest
import torch

from fgm_common.store import FLOW, FLOW_HIST
from train.parts.model_config import ModelConfig
from train.parts.motion import FlowStream
from train.parts.regions import (MIN_PATCH_HEIGHT, PATCH, REGION_ASPECT, REGION_BOX, REGION_HIST, REGION_PERSON,
                                  REGION_SEEN, REGION_VALID, RegionMotionStream, body_patches)

B, TF, K, G, HH, DM = 2, 5, 3, 8, 6, 16
ARGS = dict(clip_dim=24, hist_dim=HH, dim=DM, temporal="conv", max_len=8, dropout=0.1)


def region_batch(k: int = K, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random flow and region slots; slot 1 has no box at steps 1 and 3, slot 2 none at all; slot 0's box at
    step 2 is interpolated (valid, not seen)."""
    gen = torch.Generator().manual_seed(seed)
    valid = torch.ones(B, TF, k)
    valid[:, [1, 3], 1 % k] = 0
    if k > 2:
        valid[:, :, 2] = 0
    xy = torch.rand(B, TF, k, 2, generator=gen)
    return {FLOW: torch.randn(B, TF, 2, G, G, generator=gen), FLOW_HIST: torch.rand(B, TF, HH, generator=gen),
            REGION_HIST: torch.rand(B, TF, k, HH, generator=gen),
            REGION_BOX: torch.cat([xy, 0.1 + 0.3 * torch.rand(B, TF, k, 2, generator=gen)], -1),
            REGION_VALID: valid, REGION_SEEN: valid * (torch.arange(TF) != 2).float()[:, None],
            REGION_PERSON: torch.tensor([[1.0, 0.0, 1.0][:k]] * B), REGION_ASPECT: torch.tensor([1.0, 4 / 3])}


def moved(stream: RegionMotionStream) -> RegionMotionStream:
    """The stream with its interactor's output projection away from zero, as after some training."""
    torch.nn.init.normal_(stream.interactor.out.weight, std=0.5)
    return stream


def test_untrained_it_is_the_flow_encoder_exactly():
    torch.manual_seed(0)
    regions, flow = RegionMotionStream(**ARGS).eval(), FlowStream(**ARGS).eval()
    flow.encoder.load_state_dict(regions.encoder.state_dict())  # the same global encoder weights
    batch = region_batch()
    with torch.no_grad():
        got, want = regions(batch), flow(batch)
        assert got.shape == (B, TF, DM)
        assert torch.equal(got, want)  # zero-initialised interactor output: m = g
        assert not torch.equal(moved(regions)(batch), want)  # and it can move away


def test_invalid_slots_are_never_read_and_an_empty_step_is_finite():
    torch.manual_seed(0)
    stream = moved(RegionMotionStream(**ARGS)).eval()
    batch = region_batch()
    invalid = batch[REGION_VALID] == 0  # (B, Tf, K)
    noisy = {**batch, REGION_HIST: torch.where(invalid[..., None], 100 * torch.randn(B, TF, K, HH), batch[REGION_HIST]),
             REGION_BOX: torch.where(invalid[..., None], torch.rand(B, TF, K, 4), batch[REGION_BOX])}
    empty = {**batch, REGION_VALID: torch.zeros(B, TF, K)}
    with torch.no_grad():
        out = stream(batch)
        torch.testing.assert_close(stream(noisy), out, rtol=0, atol=1e-6)
        assert not torch.allclose(stream({**batch, REGION_HIST: batch[REGION_HIST] + 1}), out)  # valid ones are read
        unmeasured = (batch[REGION_SEEN] == 0)[..., None]  # (B, Tf, K, 1): no histogram where not seen
        noisy_hist = torch.where(unmeasured, 100 * torch.randn(B, TF, K, HH), batch[REGION_HIST])
        torch.testing.assert_close(stream({**batch, REGION_HIST: noisy_hist}), out, rtol=0, atol=1e-6)
        assert not torch.allclose(stream({**batch, REGION_SEEN: batch[REGION_VALID]}), out)  # the flag is read
        assert torch.isfinite(stream(empty)).all()


def limb_field(g: int, box: tuple[float, float, float, float], pan: float) -> torch.Tensor:
    """(1, 1, 2, g, g): the whole frame panning right by `pan` px, and inside the box (cx, cy, w, h), in its
    upper-left quarter, an arm rising at a tenth of the box's height per step."""
    cx, cy, w, h = box
    field = torch.zeros(1, 1, 2, g, g)
    field[:, :, 0] = pan
    c0, r0 = round((cx - w / 2) * g), round((cy - h / 2) * g)
    field[:, :, 1, r0:r0 + round(h * g / 2), c0:c0 + round(w * g / 2)] = -0.1 * h * g  # up = negative y
    return field


def test_body_patch_shows_where_in_the_box_a_limb_moves_whatever_the_box_size_place_or_pan():
    g = 64
    near, far = (0.5, 0.5, 0.5, 0.5), (0.3125, 0.625, 0.25, 0.25)  # both aligned to the 64 grid
    square = torch.ones(1)
    patch = lambda box, pan: body_patches(limb_field(g, box, pan), torch.tensor(box).view(1, 1, 1, 4), square)  # noqa: E731
    got = patch(near, 0.0).view(2, PATCH, PATCH)
    half = PATCH // 2
    assert got[0].abs().max() < 1e-5  # no sideways motion relative to the body
    rising, still = got[1, :half, :half], got[1, half:, :]
    torch.testing.assert_close(rising, torch.full_like(rising, -7.5))  # -10 % of the height, minus the mean (-2.5)
    torch.testing.assert_close(still, torch.full_like(still, 2.5))
    torch.testing.assert_close(patch(far, 3.0), patch(near, 0.0), rtol=0, atol=1e-4)  # smaller, elsewhere, panning


def test_body_patch_of_a_mirrored_field_is_the_mirrored_patch():
    gen = torch.Generator().manual_seed(0)
    field, box = torch.randn(1, 1, 2, 32, 32, generator=gen), torch.tensor([0.3, 0.55, 0.4, 0.5]).view(1, 1, 1, 4)
    mirror_field = torch.stack([-field[:, :, 0].flip(-1), field[:, :, 1].flip(-1)], 2)  # x flipped, x-flow negated
    mirror_box = box.clone()
    mirror_box[..., 0] = 1 - box[..., 0]
    got = body_patches(mirror_field, mirror_box, torch.ones(1)).view(2, PATCH, PATCH)
    want = body_patches(field, box, torch.ones(1)).view(2, PATCH, PATCH).flip(-1) * torch.tensor([-1.0, 1.0]).view(2, 1, 1)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


def test_body_patch_of_a_wide_frame_has_both_components_in_box_heights():
    """A 1280 x 720 frame on a 64 x 64 grid, a box 360 px high: its left half moves 10 px right, its right half
    10 px down. Both are 10 / 360 of the box height, though the grid shrank x by 1280 and y by 720."""
    g, wide, tall = 64, 1280, 720
    field = torch.zeros(1, 1, 2, g, g)
    field[:, :, 0, 16:48, 16:32] = 10 * g / wide  # box columns 16..48, rows 16..48 of the grid
    field[:, :, 1, 16:48, 32:48] = 10 * g / tall
    got = body_patches(field, torch.tensor([0.5, 0.5, 0.5, 0.5]).view(1, 1, 1, 4), torch.tensor([wide / tall]))
    x, y = got.view(2, PATCH, PATCH)
    share = 100 * 10 / (0.5 * tall)  # % of the box height
    for part in (x, -y):  # each half minus the mean: +-share / 2
        torch.testing.assert_close(part[:, : PATCH // 2], torch.full((PATCH, PATCH // 2), share / 2))
        torch.testing.assert_close(part[:, PATCH // 2:], torch.full((PATCH, PATCH // 2), -share / 2))


def test_body_patch_of_a_box_under_the_floor_is_scaled_as_one_at_the_floor():
    g = 64
    rows = torch.arange(g, dtype=torch.float32).view(1, 1, 1, g, 1).expand(1, 1, 1, g, g)
    field = torch.cat([torch.zeros_like(rows), rows], 2)  # y-flow = row: the patch spans the box's height
    at = lambda h: body_patches(field, torch.tensor([0.5, 0.5, 0.3, h]).view(1, 1, 1, 4), torch.ones(1))  # noqa: E731
    close = dict(rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(at(2 * MIN_PATCH_HEIGHT), at(MIN_PATCH_HEIGHT), **close)  # the same, in box heights
    torch.testing.assert_close(at(MIN_PATCH_HEIGHT / 5), at(MIN_PATCH_HEIGHT) / 5, **close)  # a sliver: not blown up
    assert at(MIN_PATCH_HEIGHT).abs().max() > 1  # and not zero: a limb moving a box height is 100


def test_body_patches_of_many_boxes_are_each_box_alone():
    gen = torch.Generator().manual_seed(1)
    flow, aspect = torch.randn(2, 3, 2, 16, 16, generator=gen), torch.tensor([1.0, 1.5])
    box = torch.cat([0.2 + 0.6 * torch.rand(2, 3, 4, 2, generator=gen), 0.1 + 0.4 * torch.rand(2, 3, 4, 2, generator=gen)], -1)
    together = body_patches(flow, box, aspect)  # (2, 3, 4, 2 * PATCH * PATCH)
    for k in range(4):
        torch.testing.assert_close(together[:, :, k : k + 1], body_patches(flow, box[:, :, k : k + 1], aspect))


def test_slot_tokens_read_the_body_patch():
    torch.manual_seed(0)
    slots = RegionMotionStream(**ARGS).slots.eval()
    batch = region_batch()
    args = lambda flow: (batch[REGION_HIST], batch[FLOW_HIST], flow, batch[REGION_BOX], batch[REGION_ASPECT],  # noqa: E731
                         batch[REGION_VALID] > 0.5, batch[REGION_SEEN], batch[REGION_PERSON])
    swirl = torch.zeros_like(batch[FLOW])
    swirl[:, :, 0, : G // 2], swirl[:, :, 0, G // 2:] = 1.0, -1.0  # zero mean: only where in a box it moves
    with torch.no_grad():
        assert not torch.allclose(slots(*args(batch[FLOW] + swirl)), slots(*args(batch[FLOW])))


def test_masked_tokens_are_as_if_absent():
    torch.manual_seed(0)
    interactor = moved(RegionMotionStream(**ARGS)).interactor.eval()
    g, tokens = torch.randn(B, TF, DM), torch.randn(B, TF, 4, DM)
    valid = torch.rand(B, TF, 4) > 0.5
    with torch.no_grad():
        alone = interactor(g, tokens[:, :, :0], valid[:, :, :0])  # the null token only
        torch.testing.assert_close(interactor(g, tokens, torch.zeros_like(valid)), alone)
        kept = interactor(g, tokens, valid)
        torch.testing.assert_close(interactor(g, torch.where(valid[..., None], tokens, -tokens), valid), kept)
        assert not torch.allclose(kept, alone)


def test_one_slot_has_no_pairs_and_still_runs():
    stream = moved(RegionMotionStream(**ARGS)).eval()
    with torch.no_grad():
        assert stream(region_batch(k=1)).shape == (B, TF, DM)


def test_gradients_reach_the_region_parts_once_the_interactor_moves():
    torch.manual_seed(0)
    stream = RegionMotionStream(**ARGS).train()
    region_parts = ("slots.embed", "slots.temporal", "pairs.embed")

    def grads() -> dict[str, float]:
        stream.zero_grad()
        stream(region_batch()).pow(2).mean().backward()
        return {p: sum(float(w.grad.abs().sum()) for n, w in stream.named_parameters() if n.startswith(p))
                for p in region_parts + ("interactor.out",)}

    first = grads()
    assert first["interactor.out"] > 0 and not any(first[p] for p in region_parts)  # zero output blocks them
    opt = torch.optim.Adam(stream.parameters(), lr=1e-2)
    opt.step()
    assert all(v > 0 for v in grads().values())


def test_config_needs_regions_for_a_region_encoder_and_drops_them_otherwise():
    base = dict(clip_dim=24, flow_grid=G, flow_hist_dim=HH, n_classes=3, n_frames=6, n_flow=TF, hidden=16,
                motion_dim=DM)
    with pytest.raises(ValueError, match="--detector hog"):
        ModelConfig(**base, motion_encoder="flow_regions")
    cfg = ModelConfig(**base, motion_encoder="flow_regions", n_regions=K)
    assert cfg.needs_regions and cfg.n_regions == K
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    plain = ModelConfig(**base, n_regions=K)  # a store with boxes, a model that does not read them
    assert not plain.needs_regions and plain == ModelConfig(**base)
