"""A local drawing pad and JSON API for trained models (``glyphnet serve``)."""
from .server import add_parser, create_app, model_names

__all__ = ["add_parser", "create_app", "model_names"]
