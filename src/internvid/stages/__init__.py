"""The pipeline's stages: download, probe, collection rules, scene split, cut."""
