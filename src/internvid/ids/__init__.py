"""A DuckDB database of YouTube video ids by dataset: imports, membership and overlaps."""
