"""Runnable examples: demo services for walkthroughs and tests, outside the layered packages."""
