"""Models behind one contract: the Keras embedding model and the baselines; training CLI; runtime scoring."""
