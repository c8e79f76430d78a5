"""HALO-AL: hyperbolic active learning for semantic segmentation under domain shift."""

__version__ = "0.1.0"
