"""Document metadata: the XDS model, content digests, Belgian value sets, the builder and the ITI-41 rules."""
