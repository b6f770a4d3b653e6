"""Extreme tokens: attention sinks, value-state drains, residual peaks, massive activations, active/dormant heads.

* ``scan(model, texts)`` -> ``ExtremeTokenReport`` (streaming corpus statistics, thresholds included);
* ``head_activity(model, domains)`` -> ``HeadActivity`` (sink score and ablation loss change per head and domain);
* ``token_probe(model, layer, head, context)`` -> ``TokenProbe`` (which current tokens wake a head up);
* ``bb_domains(task)`` / ``bb_probe_context(task)``: the Bigram-Backcopy inputs for the two above.
"""

from interp.extreme.scan import ExtremeTokenReport, Thresholds, scan

__all__ = ["ExtremeTokenReport", "Thresholds", "scan"]
