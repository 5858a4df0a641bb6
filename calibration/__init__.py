"""Calibration: reference charts and colour correction."""

from calibration.charts import CHARTS, COLORCHECKER_CLASSIC, Chart, chart_srgb, get_chart

__all__ = ["CHARTS", "COLORCHECKER_CLASSIC", "Chart", "chart_srgb", "get_chart"]
