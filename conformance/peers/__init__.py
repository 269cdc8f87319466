"""Other implementations run as conformance peers (OpenLEADR's VTN)."""
