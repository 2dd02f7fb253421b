"""Serving: the versioned, gated MongoDB publish and the documents it writes."""
