"""Learning: TF-IDF features, the PyTorch classifier, training and the model registry."""
