from gantk.plugin import Phase, Update


def test_alternating_phase_is_d_then_g_with_d_frozen():
    d, g = (lambda b, c: {}), (lambda b, c: {})
    phase = Phase.alternating(d, g, d_repeat=5)
    assert phase.updates == (Update("D", d, repeat=5), Update("G", g, freeze=("D",)))
    assert phase.name == "gan" and phase.steps is None
