"""`unetpp train --cuda-graph`: the step logic on the CPU with an eager stand-in for the CUDA graph; the refusals.

Capture itself needs a GPU. What the CPU can check is everything around it:
the warm-up steps leave no trace (weights, batch-norm buffers, Adam's state,
RNG), one capture per batch shape, every step a replay, outputs that the next
replay does not overwrite. The stand-in's "capture" runs the step (a CUDA
capture only records it), which the restore must undo as well.
"""

from __future__ import annotations

import pytest
import torch

from unetpp.errors import UnetppError
from unetpp.metrics import PixelCounts
from unetpp.models import build_model
from unetpp.training.config import TrainConfig
from unetpp.training.cuda_graph import GraphedTrainStep
from unetpp.training.optimizer import make_optimizer
from unetpp.training.step import train_step

FILTERS = (4, 8, 8, 8, 8)


class EagerStandIn:
    """Runs the step where CUDA would record it; a replay runs it again into the first outputs."""

    def __init__(self) -> None:
        self.captures = 0
        self.warm_up_steps = 0

    def warm_up(self, body, steps: int) -> None:
        for _ in range(steps):
            body()
            self.warm_up_steps += 1

    def capture(self, body) -> tuple:
        self.captures += 1
        loss, counts = body()

        def replay() -> None:
            new_loss, new_counts = body()
            loss.copy_(new_loss)
            for field in ("intersection", "union", "pred_sum", "target_sum"):
                getattr(counts, field).copy_(getattr(new_counts, field))

        return replay, (loss, counts)


def batches(sizes: list[int], seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        x = torch.rand(n, 3, 32, 32, generator=generator).contiguous(memory_format=torch.channels_last)
        y = (torch.rand(n, 1, 32, 32, generator=generator) > 0.6).float()
        out.append((x, y))
    return out


def fresh(arch: str, block: str) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = build_model(arch, filters=FILTERS, block=block).to(memory_format=torch.channels_last).train()
    return model, make_optimizer(model, 1e-3)


def counts_tuple(counts: PixelCounts) -> tuple[list[int], ...]:
    return tuple(t.tolist() for t in (counts.intersection, counts.union, counts.pred_sum, counts.target_sum))


@pytest.mark.parametrize(("arch", "block"), [("nested_unet_ds", "vgg"), ("unet", "authors")])
def test_graphed_steps_train_exactly_as_eager_steps(arch: str, block: str) -> None:
    # Full batches of 4 and a short one of 2, as an epoch has: two captures, and the weights, buffers, losses
    # and counts of the eager training bit for bit (the authors' block draws dropout: the RNG is restored too).
    data = batches([4, 4, 2, 4, 2, 4])
    eager_model, eager_opt = fresh(arch, block)
    torch.manual_seed(7)
    eager = [train_step(eager_model, eager_opt, x, y, "fp32") for x, y in data]
    eager_rng = torch.get_rng_state()

    model, optimizer = fresh(arch, block)
    stand_in = EagerStandIn()
    step = GraphedTrainStep(model, optimizer, "fp32", capture=stand_in)
    torch.manual_seed(7)
    graphed = [step(x, y) for x, y in data]

    assert stand_in.captures == 2 and stand_in.warm_up_steps == 6  # one per batch shape, 3 warm-up steps each
    for (eager_loss, eager_counts), (loss, counts) in zip(eager, graphed):
        assert torch.equal(eager_loss, loss)
        assert counts_tuple(eager_counts) == counts_tuple(counts)
    for (name, expected), actual in zip(eager_model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(expected, actual), name
    eager_state, state = eager_opt.state_dict()["state"], optimizer.state_dict()["state"]
    assert eager_state.keys() == state.keys()
    for key in state:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(eager_state[key][name], state[key][name]), (key, name)
    assert torch.equal(torch.get_rng_state(), eager_rng)


def test_outputs_are_not_overwritten_by_the_next_replay() -> None:
    model, optimizer = fresh("unet", "vgg")
    step = GraphedTrainStep(model, optimizer, "fp32", capture=EagerStandIn())
    (x1, y1), (x2, y2) = batches([4, 4])
    first_loss, first_counts = step(x1, y1)
    kept_loss, kept_counts = first_loss.clone(), counts_tuple(first_counts)
    second_loss, _ = step(x2, y2)
    assert not torch.equal(first_loss, second_loss)
    assert torch.equal(first_loss, kept_loss) and counts_tuple(first_counts) == kept_counts


def test_capturing_on_cuda_needs_a_capturable_adam() -> None:
    model, optimizer = fresh("unet", "vgg")
    with pytest.raises(UnetppError, match="capturable=True"):
        GraphedTrainStep(model, optimizer, "fp32")
    capturable = make_optimizer(model, 1e-3, capturable=True)
    assert all(group["capturable"] for group in capturable.param_groups)


def test_a_failed_capture_names_the_way_out() -> None:
    class Refuses(EagerStandIn):
        def capture(self, body) -> tuple:
            raise RuntimeError("operation not permitted when stream is capturing")

    model, optimizer = fresh("unet", "vgg")
    (x, y), = batches([4])
    with pytest.raises(UnetppError, match=r"batch shape \(4, 3, 32, 32\).*train without --cuda-graph"):
        GraphedTrainStep(model, optimizer, "fp32", capture=Refuses())(x, y)


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_cuda_graph_is_refused_off_cuda(tmp_path, device: str) -> None:
    config = TrainConfig(data=tmp_path / "d.h5", split=tmp_path / "s.json", arch="unet", out=tmp_path / "m",
                         device=device, cuda_graph=True)
    with pytest.raises(UnetppError, match=f"--cuda-graph needs a CUDA device, and --device is '{device}'"):
        config.validate()


def test_auto_resolving_to_the_cpu_is_refused_before_any_work(
    synthetic_processed_h5, synthetic_split_json, tmp_path
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device auto resolves to it")
    from unetpp.training.loop import train

    config = TrainConfig(data=synthetic_processed_h5, split=synthetic_split_json, arch="unet", out=tmp_path / "m", epochs=1, cuda_graph=True,
                         model_kwargs={"filters": list(FILTERS)})
    with pytest.raises(UnetppError, match="would train on (cpu|mps).*leave --cuda-graph out"):
        train(config, progress=False)
    assert not (tmp_path / "m").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: a CUDA graph cannot be captured on the CPU")
@pytest.mark.parametrize("arch", ["unet", "nested_unet_ds"])
def test_on_cuda_replayed_graphs_train_as_eager_capturable_steps(arch: str) -> None:
    # The same kernels either way (capturable Adam in both), so the same numbers are expected.
    device = torch.device("cuda")
    data = [(x.to(device), y.to(device)) for x, y in batches([4, 4, 2, 4, 2, 4])]

    def fresh_cuda() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = build_model(arch, filters=FILTERS).to(device, memory_format=torch.channels_last).train()
        return model, make_optimizer(model, 1e-3, capturable=True)

    eager_model, eager_opt = fresh_cuda()
    eager = [train_step(eager_model, eager_opt, x, y, "bf16")[0] for x, y in data]
    model, optimizer = fresh_cuda()
    step = GraphedTrainStep(model, optimizer, "bf16")
    graphed = [step(x, y)[0] for x, y in data]
    assert torch.equal(torch.stack(eager), torch.stack(graphed))
    for (name, expected), actual in zip(eager_model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(expected, actual), name
