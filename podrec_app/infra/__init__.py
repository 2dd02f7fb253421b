"""The local services behind ``podrec infra``, one module each, over a small supervisor
(``supervisor``); ``podrec_app.localinfra`` says which of them a deployment runs."""
