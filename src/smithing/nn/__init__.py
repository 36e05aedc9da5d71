"""Plain ``nn.Module`` building blocks: the MLP, activations, and (later) dropout variants."""

from smithing.nn.mlp import MLP

__all__ = ["MLP"]
