"""Certificates and trust for every Flex4Grid stakeholder (OpenADR 2.0b identity)."""
