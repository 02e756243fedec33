"""Multi-resolution deep JSCC (Mortaheb et al., 2023) and single-layer deep JSCC (Bourtsoulatze et al., 2019).

>>> from semcom.jscc import JsccConfig, JsccSystem, MultiResJscc
>>> model = MultiResJscc(JsccConfig((1, 28, 28), (44, 43, 43), arch="mlp"))
>>> system = JsccSystem(model)   # or JsccSystem("mnist-mr3-awgn"), JsccSystem("path/to.safetensors")
"""

from semcom.jscc.checkpoint import load_checkpoint, save_checkpoint
from semcom.jscc.config import JsccConfig, parse_ratio, split_symbols, symbols_for_ratio
from semcom.jscc.model import JsccOutput, MultiResJscc, normalize_power, receiver_input, symbol_estimate
from semcom.jscc.system import JsccSystem, JsccTransmission
from semcom.jscc.train import TrainConfig, evaluate  # train(): semcom.jscc.train.train
from semcom.jscc.zoo import MODELS, load_model, open_model

__all__ = [
    "MODELS",
    "JsccConfig",
    "JsccOutput",
    "JsccSystem",
    "JsccTransmission",
    "MultiResJscc",
    "TrainConfig",
    "evaluate",
    "load_checkpoint",
    "load_model",
    "normalize_power",
    "open_model",
    "parse_ratio",
    "receiver_input",
    "save_checkpoint",
    "split_symbols",
    "symbol_estimate",
    "symbols_for_ratio",
]
