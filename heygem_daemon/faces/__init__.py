"""Face tracking: per-frame boxes and landmarks, smoothed, cached per video."""
