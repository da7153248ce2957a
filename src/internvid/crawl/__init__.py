"""Collecting videos like InternVid: query-driven search, the paper's rules, a resumable journal."""
