"""Applications around the method: the web studio, ONNX/TorchScript export, the DCASE folder
layout, experiments over seeds, benchmarks and the synthetic demo data."""
