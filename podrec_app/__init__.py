"""The app on top: the podrec command line, the demo, the local-infra launcher, backfills, screenshots."""
