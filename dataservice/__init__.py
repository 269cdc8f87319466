"""Privacy-preserving metering data service: consent, anonymised access, audit."""
