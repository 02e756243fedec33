"""semcom: a semantic-communication simulator.

Multi-resolution deep JSCC, the classical separate source-channel coding (SSCC) baseline and
semantic receivers, over channels built on Sionna's PyTorch-native ``sionna.phy``.
Conventions (SNR, bandwidth ratio, power, fading, bit budget) are in ``docs/conventions.md``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
