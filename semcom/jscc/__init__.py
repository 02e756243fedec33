"""Multi-resolution deep JSCC (Mortaheb et al., 2023) and single-layer deep JSCC (Bourtsoulatze et al., 2019).

>>> from semcom.jscc import JsccConfig, MultiResJscc
>>> model = MultiResJscc(JsccConfig((1, 28, 28), (44, 43, 43)))
"""

from semcom.jscc.checkpoint import load_card, load_checkpoint, save_checkpoint
from semcom.jscc.config import JsccConfig, parse_ratio, split_symbols, symbols_for_ratio
from semcom.jscc.model import JsccOutput, MultiResJscc, normalize_power, receiver_input

__all__ = [
    "JsccConfig",
    "JsccOutput",
    "MultiResJscc",
    "load_card",
    "load_checkpoint",
    "normalize_power",
    "parse_ratio",
    "receiver_input",
    "save_checkpoint",
    "split_symbols",
    "symbols_for_ratio",
]
