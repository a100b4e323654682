"""The intake API: receives and tracks citizens' reports (Open311 GeoReport v2 and JSON); see the README."""
