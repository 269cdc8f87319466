"""OpenADR 2.0b protocol core shared by the VTN, the VEN, the aggregator and the harness.

Pure: no aiohttp, SQLAlchemy, asyncio, clock or randomness; callers pass `now` and nonces in.
"""
