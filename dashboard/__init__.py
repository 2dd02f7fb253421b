"""The Streamlit dashboard: ``dashboard.queries`` reads the lake with DuckDB; ``app.py`` draws it."""
