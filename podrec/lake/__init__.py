"""The lake: where each table lives, how Delta tables are read and written, DuckDB views, Spark."""
