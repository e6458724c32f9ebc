"""Render analysis results: terminal tables, CSV/JSONL files, self-contained HTML pages."""
