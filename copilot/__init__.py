"""Reply and content copilot for social customer service and community management."""

__version__ = "0.1.0"
