from gantk.plugin import Phase, Update


def test_alternating_phase_is_d_then_g_with_d_frozen():
    d, g = (lambda b, c: {}), (lambda b, c: {})
    phase = Phase.alternating(d, g, d_repeat=5)
    assert phase.updates == (Update("D", d, repeat=5), Update("G", g, freeze=("D",)))
    assert phase.name == "gan" and phase.steps is None


def test_noise_is_drawn_for_the_global_batch_and_sliced_per_rank():
    import torch

    from gantk.plugin import StepContext

    def context(rank: int, world: int) -> StepContext:
        g = torch.Generator().manual_seed(7)
        return StepContext({}, torch.device("cpu"), 0, 1, "gan", g, torch.Generator(), rank=rank, world_size=world)

    whole = context(0, 1).randn(6, 3)
    parts = [context(r, 3).randn(2, 3) for r in range(3)]
    assert torch.equal(torch.cat(parts), whole)  # noise does not depend on the number of processes
    assert context(0, 1).rand().shape == () and torch.equal(
        context(1, 3).rand(), context(0, 1).rand()
    )  # no batch: shared
