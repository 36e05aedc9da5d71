"""smithing: the practice of neural smithing on PyTorch.

The tricks that make backprop-trained networks train well (initialization, optimizers,
regularizers, pretraining, ...), each faithful to its paper, measured, and shown by a study.
"""

__version__ = "0.1.0"
