"""Every differentiable op, one module per family. Importing this registers them all.

Where is the Jacobian of tanh?  ``elementwise.py``.  Of matmul?  ``einsum.py``.
"""
from .arithmetic import add, divide, multiply, subtract
from .einsum import diagonal, dot, einsum, inner, matmul, mean, outer, sum, tensordot, trace, transpose, vdot
from .elementwise import abs, cos, exp, log, negative, power, relu, sigmoid, sin, softplus, sqrt, square, tanh
from .linalg import det, fro, inv, logdet, solve
from .losses import cross_entropy, mse
from .operators import OPERATORS
from .reductions import log_softmax, logsumexp, softmax
from .shape import reshape

__all__ = [
    "add", "subtract", "multiply", "divide", "negative", "power",
    "exp", "log", "sqrt", "square", "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "abs",
    "einsum", "matmul", "transpose", "sum", "mean", "trace", "outer", "inner", "dot", "vdot", "tensordot", "diagonal",
    "reshape", "fro", "inv", "det", "logdet", "solve",
    "softmax", "log_softmax", "logsumexp", "mse", "cross_entropy",
]
