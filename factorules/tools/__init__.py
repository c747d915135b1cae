"""Measuring tools: the generated code run and measured in each framework.

It owns cross-backend verification (verify), speed and memory benchmarks (bench, memory),
the signature tables checked against installed libraries (signatures), what a spec edit
changes (spec_diff), the frameworks' own functions and where their rules refuse or are wrong
(natives) and gauge-invariant losses (gauge).  It builds on factorules.compiler and
factorules.audit.
"""
