"""Captioning: image captioners, caption fusion by a language model, cleaning, model presets."""
