"""One table of op cases: it drives every per-op test in test_ops.py.

Each case: the op's registered name, how to call it on the leaves, the leaves'
shapes, their domain, and an independent numpy reference for the forward.
Shapes are non-square wherever the op allows, so a transposed index cannot hide.
"""
from __future__ import annotations

import numpy as np

import jacobians as jx
from case import Case, draw  # noqa: F401  (the fields and the input domains)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _onehot_ce(z, labels):
    ls = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -ls[np.arange(len(labels)), labels].mean()


LABELS = np.array([2, 0, 1, 2])
ONEHOT = np.eye(5)[[4, 0, 3]]

CASES = [
    Case("add", jx.add, ((3, 4), (3, 4)), np.add),
    Case("add", jx.add, ((3, 4), (4,)), np.add, note="bias-row"),
    Case("add", jx.add, ((3, 4), (3, 1)), np.add, note="bias-col"),
    Case("add", jx.add, ((1, 4), (3, 1)), np.add, note="both-broadcast"),
    Case("subtract", jx.subtract, ((2, 5), (2, 5)), np.subtract),
    Case("subtract", jx.subtract, ((5,), (2, 5)), np.subtract, note="broadcast-left"),
    Case("multiply", jx.multiply, ((3, 2), (3, 2)), np.multiply),
    Case("multiply", jx.multiply, ((3, 2), ()), np.multiply, note="scalar"),
    Case("divide", jx.divide, ((2, 3), (2, 3)), np.divide, domain="away_from_zero"),
    Case("divide", jx.divide, ((4, 3), (3,)), np.divide, domain="away_from_zero", note="broadcast"),
    Case("negative", jx.negative, ((3, 2),), np.negative),
    Case("power", lambda x: jx.power(x, 3), ((2, 3),), lambda x: x**3),
    Case("power", lambda x: jx.power(x, -0.5), ((4,),), lambda x: x**-0.5, domain="positive", note="fractional"),
    Case("exp", jx.exp, ((2, 3),), np.exp),
    Case("log", jx.log, ((3, 2),), np.log, domain="positive"),
    Case("sqrt", jx.sqrt, ((2, 3),), np.sqrt, domain="positive"),
    Case("square", jx.square, ((3, 2),), np.square),
    Case("sin", jx.sin, ((2, 3),), np.sin),
    Case("cos", jx.cos, ((3, 2),), np.cos),
    Case("tanh", jx.tanh, ((2, 3),), np.tanh),
    Case("tanh", jx.tanh, ((2, 3, 2),), np.tanh, note="rank3"),
    Case("sigmoid", jx.sigmoid, ((3, 2),), lambda x: 1 / (1 + np.exp(-x))),
    Case("relu", jx.relu, ((2, 3),), lambda x: np.where(x > 0, x, 0.0), domain="away_from_zero"),
    Case("softplus", jx.softplus, ((3, 2),), lambda x: np.log(1 + np.exp(x))),
    Case("abs", jx.abs, ((2, 3),), np.abs, domain="away_from_zero"),
    Case("matmul", jx.matmul, ((3, 4), (4, 2)), lambda a, b: a @ b),
    Case("matmul", jx.matmul, ((3, 4), (4,)), lambda a, b: a @ b, note="matrix-vector"),
    Case("matmul", jx.matmul, ((4,), (4, 2)), lambda a, b: a @ b, note="vector-matrix"),
    Case("matmul", jx.matmul, ((4,), (4,)), lambda a, b: a @ b, note="vector-vector"),
    Case("matmul", jx.matmul, ((2, 3, 4), (2, 4, 2)), np.matmul, note="batched"),
    Case("matmul", jx.matmul, ((3, 4), (2, 4, 2)), np.matmul, note="broadcast-batch"),
    Case("einsum", lambda a, b: jx.einsum("ij,jk->ik", a, b), ((2, 3), (3, 4)),
         lambda a, b: np.einsum("ij,jk->ik", a, b)),
    Case("einsum", lambda a: jx.einsum("ii->", a), ((3, 3),), lambda a: np.einsum("ii->", a), note="trace"),
    Case("einsum", lambda a, b: jx.einsum("nd,nn->d", a, b), ((3, 2), (3, 3)),
         lambda a, b: np.einsum("nd,nn->d", a, b), note="repeated-label"),
    Case("einsum", lambda a, b: jx.einsum("...ij,...jk", a, b), ((2, 3, 4), (4, 2)),
         lambda a, b: np.einsum("...ij,...jk", a, b), note="ellipsis"),
    Case("outer", jx.outer, ((3,), (2,)), np.outer),
    Case("inner", jx.inner, ((2, 3), (4, 3)), np.inner),
    Case("dot", jx.dot, ((2, 3), (3, 4)), np.dot),
    Case("dot", jx.dot, ((2, 3, 4), (4,)), np.dot, note="nd-vector"),
    Case("vdot", jx.vdot, ((2, 3), (3, 2)), np.vdot),
    Case("tensordot", lambda a, b: jx.tensordot(a, b, axes=([1, 0], [0, 1])), ((2, 3, 4), (3, 2)),
         lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 1]))),
    Case("diagonal", jx.diagonal, ((3, 3),), np.diagonal),
    Case("diagonal", lambda a: jx.diagonal(a, offset=1), ((3, 4),), lambda a: np.diagonal(a, offset=1),
         note="offset"),
    Case("transpose", jx.transpose, ((2, 3),), np.transpose),
    Case("transpose", lambda x: jx.transpose(x, (1, 2, 0)), ((2, 3, 4),), lambda x: x.transpose(1, 2, 0), note="rank3"),
    Case("reshape", lambda x: jx.reshape(x, (3, 4)), ((2, 6),), lambda x: x.reshape(3, 4)),
    Case("sum", jx.sum, ((2, 3),), np.sum),
    Case("sum", lambda x: jx.sum(x, axis=1), ((2, 3, 4),), lambda x: x.sum(axis=1), note="axis"),
    Case("sum", lambda x: jx.sum(x, axis=(0, 2), keepdims=True), ((2, 3, 4),),
         lambda x: x.sum(axis=(0, 2), keepdims=True), note="tuple-keepdims"),
    Case("mean", jx.mean, ((3, 2),), np.mean),
    Case("mean", lambda x: jx.mean(x, axis=0), ((3, 2),), lambda x: x.mean(axis=0), note="axis"),
    Case("trace", jx.trace, ((3, 3),), np.trace),
    Case("trace", jx.trace, ((2, 3, 3),), lambda a: np.trace(a, axis1=1, axis2=2), note="batched"),
    Case("fro", jx.fro, ((3, 2),), np.linalg.norm),
    Case("fro", jx.fro, ((2, 3, 2),), lambda x: np.sqrt((x**2).sum()), note="rank3"),
    Case("inv", jx.inv, ((3, 3),), np.linalg.inv, domain="well_conditioned"),
    Case("det", jx.det, ((3, 3),), np.linalg.det, domain="well_conditioned"),
    Case("logdet", jx.logdet, ((3, 3),), lambda a: np.log(abs(np.linalg.det(a))), domain="well_conditioned"),
    Case("solve", jx.solve, ((3, 3), (3, 2)), np.linalg.solve, domain="well_conditioned"),
    Case("solve", jx.solve, ((3, 3), (3,)), np.linalg.solve, domain="well_conditioned", note="vector"),
    Case("softmax", jx.softmax, ((2, 4),), lambda x: _softmax(x, -1)),
    Case("softmax", lambda x: jx.softmax(x, axis=0), ((3, 2, 2),), lambda x: _softmax(x, 0), note="axis0-rank3"),
    Case("log_softmax", jx.log_softmax, ((3, 4),), lambda x: np.log(_softmax(x, -1))),
    Case("log_softmax", lambda x: jx.log_softmax(x, axis=0), ((3, 2),), lambda x: np.log(_softmax(x, 0)), note="axis0"),
    Case("logsumexp", jx.logsumexp, ((2, 3),), lambda x: np.log(np.exp(x).sum())),
    Case("logsumexp", lambda x: jx.logsumexp(x, axis=1), ((2, 3, 2),), lambda x: np.log(np.exp(x).sum(1)), note="axis"),
    Case("mse", jx.mse, ((3, 2), (3, 2)), lambda p, t: ((p - t) ** 2).mean()),
    Case("cross_entropy", lambda z: jx.cross_entropy(z, LABELS), ((4, 3),), lambda z: _onehot_ce(z, LABELS),
         note="int-labels"),
    Case("cross_entropy", lambda z: jx.cross_entropy(z, ONEHOT), ((3, 5),),
         lambda z: _onehot_ce(z, ONEHOT.argmax(1)), note="one-hot"),
]

# Each family's further cases live in a file of its own (one writer each); the table is their union.
from cases_elementwise import CASES as _ELEMENTWISE  # noqa: E402
from cases_indexing import CASES as _INDEXING  # noqa: E402
from cases_linalg import CASES as _LINALG  # noqa: E402
from cases_nn import CASES as _NN  # noqa: E402
from cases_reductions import CASES as _REDUCTIONS  # noqa: E402

CASES = CASES + _ELEMENTWISE + _INDEXING + _LINALG + _REDUCTIONS + _NN
