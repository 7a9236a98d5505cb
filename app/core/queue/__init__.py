"""Background work: queue names and the enqueue helper, per-organization lanes, job tracking."""
