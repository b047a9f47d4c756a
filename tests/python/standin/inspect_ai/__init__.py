"""A minimal stand-in of inspect_ai (which cannot be installed here), enough to load
inspect_sbx._registry in tests. Written from Inspect's documentation and sources of its
sandbox interface (inspect_ai.util): names, signatures, defaults and messages match."""
