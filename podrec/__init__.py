"""podrec: a podcast-episode recommendation lakehouse.

The plain-Python core: settings, the lake layout, Spark configuration, the local
infrastructure launcher and the catalog parsing that the Dagster assets call.
"""
