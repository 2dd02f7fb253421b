"""The recommender: engagement, ALS, the hybrid rules, scoring every listener, evaluation, A/B."""
