"""The audit: every rule checked against the mathematics it came from, in high precision.

It owns numeric evaluation in mpmath (numeric), sampling of inputs and outputs from their
structures (sample), the audit's checks (audit) and its command (command), mutation testing
(mutate), LaTeX printing (latex) and the derivation pages (derivation).  It builds on
factorules.compiler only.
"""
