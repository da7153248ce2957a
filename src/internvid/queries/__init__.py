"""The InternVid action-query vocabulary: shipped label lists, normalisation, deduplicated queries."""
