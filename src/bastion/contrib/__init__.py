"""Framework adapters: thin files onto RequestContext (see docs/architecture.md)."""
