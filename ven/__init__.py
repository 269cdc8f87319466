"""The prosumer gateway's VEN: OpenADR 2.0b events to devices, telemetry back to the VTN.

Pure parts: `session` (the protocol state machine) with `schedule` (events and the signals in
force) and `reporting` (metadata, report requests, readings), `outbox` (queued messages),
`model` (the vocabulary every part shares); `han/` bridges to the devices. The asyncio runner
is the only loop; transports are adapters around it.
"""
