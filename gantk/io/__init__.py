"""gantk's persistence layer: what is read from and written to disk, and nothing that trains.

``checkpoint`` (folders of safetensors + JSON, with training state from ``state``), ``generators``
(a trained generator back from its folder), ``onnx`` (exported generators read back), ``weights``
(third-party weights without unpickling) and ``images`` (the [-1, 1] <-> uint8 conversion, grids and
files). The engine, sampling, metrics, the CLI and the apps all use it; it imports nothing from them.
"""
