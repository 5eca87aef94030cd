"""The service's use cases, free of HTTP: resolve a recipe reference to a plan, run an
augment job, render a preview, produce a dataset stream, and the bounded executor and
caches they share. Nothing here imports FastAPI; :mod:`augsvc.api` is the HTTP face."""
