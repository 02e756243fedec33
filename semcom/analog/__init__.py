"""The linear analog code (SoftCast, KLT): the classical graceful-degradation scheme.

"SoftCast: One-Size-Fits-All Wireless Video" (Jakubczak and Katabi, 2010) sends linear transform
coefficients, scaled by a power allocation, straight as channel symbols, and decodes them by LMMSE:
quality falls smoothly with the SNR instead of at a cliff. semcom's version fits a KLT (or ranks DCT
coefficients) on training images and sends them in L layers, strongest first.

>>> from semcom.analog import LinearAnalogCode, LinearCodeConfig
>>> code = LinearAnalogCode(LinearCodeConfig((1, 28, 28), (44, 43, 43)))
"""

from semcom.analog.allocation import mmse_allocation, softcast_allocation
from semcom.analog.code import LinearAnalogCode, LinearCodeConfig, equivalent_awgn
from semcom.analog.transform import FittedTransform, fit_transform

__all__ = [
    "FittedTransform",
    "LinearAnalogCode",
    "LinearCodeConfig",
    "equivalent_awgn",
    "fit_transform",
    "mmse_allocation",
    "softcast_allocation",
]
