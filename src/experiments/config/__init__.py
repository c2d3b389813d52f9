"""The configuration: its schema (``schema``) and the rules every run obeys (``rules``)."""
