"""The `dadang` command line."""
