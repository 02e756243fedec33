"""Separate source-channel coding (SSCC): the classical baseline.

Image codecs (:mod:`semcom.sscc.codecs`) with rate matching to a bit budget
(:mod:`semcom.sscc.rate`), the 5G LDPC + QAM link on ``sionna.phy`` (:mod:`semcom.sscc.link`), MCS
tables with cached BLER curves (:mod:`semcom.sscc.mcs`) that semcom computes itself with its BLER
simulator (:mod:`semcom.sscc.bler`, ``semcom bler``), the capacity bound
(:mod:`semcom.sscc.capacity`), and the whole chain as a transmission system
(:mod:`semcom.sscc.system`). Submodules are imported on use: Sionna loads only with the link.
"""
