"""How a formula becomes LaTeX (and how names are marked so that it can).

Formula strings mark every node name as ``\\x01name\\x02``: the text renderer
drops the marks (:func:`plain`), the LaTeX renderer typesets the name
(``\\mathrm{yhat}``) and the rest symbol by symbol (:func:`tex`): δ, Σ, ⊗, ᵀ, ⁻¹,
subscripts in braces, function names as operators.

>>> tex("d" + mark("Y") + "_cd/d" + mark("W") + "_ab = δ_ca " + mark("X") + "_bd")
'\\\\partial Y_{cd}/\\\\partial W_{ab} = \\\\delta_{ca} X_{bd}'
"""
from __future__ import annotations

import re

__all__ = ["MARK_OPEN", "MARK_CLOSE", "mark", "dmark", "plain", "tex", "tex_text"]

MARK_OPEN, MARK_CLOSE = "\x01", "\x02"


def mark(name: str, wrap: bool = True) -> str:
    """A node name, marked; parenthesized when an operator or space appears outside parentheses."""
    depth, bare_op = 0, False
    for c in name:
        depth += (c == "(") - (c == ")")
        bare_op |= depth == 0 and c in " +-*/@,"
    if wrap and bare_op:
        name = f"({name})"
    return f"{MARK_OPEN}{name}{MARK_CLOSE}"


def dmark(name: str) -> str:
    """A marked name to write after 'd': d(fro(W @ X)), not dfro(W @ X)."""
    marked = mark(name)
    if "(" in name and not marked.startswith(MARK_OPEN + "("):
        marked = mark(f"({name})", wrap=False)
    return marked


def plain(s: str) -> str:
    """The formula as plain text: the marks dropped."""
    return s.replace(MARK_OPEN, "").replace(MARK_CLOSE, "")


_SYMBOLS = [
    ("Σ_{", r"\sum_{"), ("Σ_", r"\sum_"), ("Σ", r"\sum "), ("δ", r"\delta"), ("σ", r"\sigma"), ("⊗", r"\otimes "),
    ("⊙", r"\odot "), ("·", r"\cdot "), ("ᵀ", r"^{\top}"), ("⁻¹", r"^{-1}"), ("²", "^{2}"), ("‖", r"\|"),
    ("√", r"\sqrt"), ("→", r"\to "), ("−", "-"), ("∂", r"\partial "), ("×", r"\times "), ("…", r"\dots "),
]
_WORDS = re.compile(r"\b(exp|log|sin|cos|tanh|sign|softmax|diag|vec|tr|flat)\b")
_FUNCS = {"exp": r"\exp", "log": r"\log", "sin": r"\sin", "cos": r"\cos", "tanh": r"\tanh",
          "tr": r"\operatorname{tr}"}


def _symbols(s: str) -> str:
    for a, b in _SYMBOLS:
        s = s.replace(a, b)
    return s


def _name(name: str) -> str:
    if len(name) == 1 or (len(name) == 2 and name[1] == "ᵀ"):
        return _symbols(name)
    esc = name.replace("\\", r"\backslash ").replace("_", r"\_").replace("#", r"\#").replace("&", r"\&")
    return r"\mathrm{" + _symbols(esc) + "}"


def tex(s: str) -> str:
    """LaTeX (math mode) for a marked formula string."""
    s = s.replace("d" + MARK_OPEN, r"\partial " + MARK_OPEN)
    out = []
    for k, part in enumerate(re.split(f"[{MARK_OPEN}{MARK_CLOSE}]", s)):
        if k % 2:  # a name
            out.append(_name(part))
            continue
        part = _WORDS.sub(lambda m: _FUNCS.get(m.group(1), r"\operatorname{" + m.group(1) + "}"), part)
        part = part.replace("dvec(", r"\partial\operatorname{vec}(")
        part = re.sub(r"_(\w+)", r"_{\1}", part)
        out.append(_symbols(part))
    return "".join(out)


def tex_text(s: str) -> str:
    """A prose line as LaTeX \\text{} (names and symbols kept)."""
    s = plain(s).replace("\\", "/").replace("_", r"\_").replace("#", r"\#").replace("{", r"\{").replace("}", r"\}")
    s = s.replace("&", r"\&").replace("%", r"\%").replace("^", r"\^{}")
    return r"\text{" + s + "}"
