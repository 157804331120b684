"""Sparse linear heads over concept scores."""

from cbm.heads.sparse import SparseLinearHead, nec

__all__ = ["SparseLinearHead", "nec"]
