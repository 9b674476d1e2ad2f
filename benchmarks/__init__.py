"""Benchmarks of the explicit-Jacobian route against VJPs, finite differences and JAX/PyTorch/autograd.

Run ``python benchmarks/run.py`` (``--help`` for options); results go to
``benchmarks/results/`` as JSON, Markdown and a PNG. docs/benchmarks.md explains them.
"""
