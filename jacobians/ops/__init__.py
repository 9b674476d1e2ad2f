"""Every differentiable op, one module per family. Importing this registers them all.

Where is the Jacobian of tanh?  ``elementwise.py``.  Of matmul?  ``linalg.py``.
"""
from .arithmetic import add, divide, multiply, subtract
from .elementwise import abs, cos, exp, log, negative, power, relu, sigmoid, sin, softplus, sqrt, square, tanh
from .linalg import det, fro, inv, logdet, matmul, solve, trace
from .losses import cross_entropy, mse
from .reductions import log_softmax, logsumexp, mean, softmax, sum
from .shape import reshape, transpose

__all__ = [
    "add", "subtract", "multiply", "divide", "negative", "power",
    "exp", "log", "sqrt", "square", "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "abs",
    "matmul", "transpose", "reshape", "sum", "mean", "trace", "fro", "inv", "det", "logdet", "solve",
    "softmax", "log_softmax", "logsumexp", "mse", "cross_entropy",
]
