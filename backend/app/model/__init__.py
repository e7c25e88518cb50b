"""Engines behind one contract (``base``): the Keras embedding model and the baselines, and the model directory format."""
