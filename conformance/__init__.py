"""OpenADR 2.0b conformance harness: drives any VTN or VEN over the wire and grades it."""
