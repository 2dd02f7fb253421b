"""Data quality: expectation suites for every table and Evidently drift, as plain functions."""
