"""The browser app (``glyphnet serve``): a drawing pad and JSON API for trained models."""
from .app import create_app, model_names

__all__ = ["create_app", "model_names"]
