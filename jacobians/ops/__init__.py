"""Every differentiable op, one module per family. Importing this registers them all.

Where is the Jacobian of tanh?  ``elementwise.py``.  Of matmul?  ``einsum.py``.
"""
from . import arithmetic, einsum, elementwise, indexing, linalg, losses, nn, reductions, selection, shape
from .operators import OPERATORS
from .numpy_dispatch import FUNCTIONS, UFUNCS  # after every family: the tables cover them all

_FAMILIES = (arithmetic, elementwise, einsum, shape, indexing, selection, reductions, linalg, losses, nn)
globals().update({name: getattr(m, name) for m in _FAMILIES for name in m.__all__})
__all__ = [name for m in _FAMILIES for name in m.__all__]
