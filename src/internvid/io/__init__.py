"""Readers and writers of files: the InternVid release format, parquet tables, WebDataset shards."""
