"""Community content."""
