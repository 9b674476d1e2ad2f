"""Op cases of the linalg family (the fields are in case.py; op_cases.py joins the tables)."""
from case import Case, draw  # noqa: F401

CASES: list = []
