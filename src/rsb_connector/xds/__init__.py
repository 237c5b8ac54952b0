"""XDS.b binding: ebRIM codec, SOAP 1.2 envelopes, MTOM/XOP, one module per transaction."""
