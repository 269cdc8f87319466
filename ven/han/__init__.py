"""The home side of the gateway: simulated devices and the HAN/BMS bridge.

`devices` and `household` are pure (physics as step functions); `bus` is the interface the VEN
runner drives, with an in-process implementation; `mqtt` carries the same over a broker.
Nothing is imported here, so the pure modules stay importable without asyncio.
"""
