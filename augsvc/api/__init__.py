"""The HTTP service: ``augsvc.api.app.create_app(settings)`` builds the FastAPI app.

Nothing is imported here, so ``augsvc recipe ...`` (which only needs httpx) starts fast.
"""
