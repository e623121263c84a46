"""Shared code of the example workloads: backend selection, numpy init, the transformer blocks
(written once against the torch-compatible API, instantiated for torch or ember) and the trainer."""
