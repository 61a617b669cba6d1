"""The tracking core: the model built once, its backends, and the tracker loop over it."""
