"""The sections of ``interp report``, one module per capability.

Each module has ``add_to_report(report, model, prompt, **options)``, which adds its section(s) to a ``Report``; ``build_report``
passes each section only the options it names; ``interp.report.build.SECTIONS`` lists them in report order. Widgets reuse
the smaller helpers (``attribution.add_attribution``, ``extreme.add_layer_tables``).
"""
