"""Plotly figures of analysis results, shared by the widgets and the HTML reports.

One module per capability (``interp.viz.lens``, ``interp.viz.extreme``, ...); ``interp.viz.common``
holds the helpers they share. Functions take result objects and return ``plotly.graph_objects.Figure``.
"""
