"""Pre-training, fine-tuning and probing."""
