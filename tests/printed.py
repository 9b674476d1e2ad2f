"""Reading numbers back from what the demos print, for tests that check the text."""
import re

import numpy as np

_FLOAT = re.compile(r"-?\d+\.\d+")
_NUMBER_START = ("[", "-", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9")


def printed_matrix(text: str, header: str, shape: tuple) -> np.ndarray:
    """The numbers printed on the lines after ``header``, as an array of ``shape``."""
    after = text.split(header, 1)[1]
    block = []
    for line in after.splitlines()[1:]:
        if not line.strip().startswith(_NUMBER_START):
            break
        block.append(line)
    values = [float(v) for v in _FLOAT.findall("\n".join(block))]
    return np.array(values).reshape(shape)
