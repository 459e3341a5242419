"""Which device torch can run on, for the layers above that must not import torch themselves."""

from __future__ import annotations


def cuda_available() -> bool:
    """True when torch sees a CUDA device (imports torch: call it only when a model will run)."""
    import torch

    return torch.cuda.is_available()
