"""The VTN's admin REST API (JSON under /admin/v1/): VENs, events, reports, opts, audit.

`routes.setup(app, context)` adds it to the VTN's aiohttp app; bearer tokens (`tokens`) guard
it (`middleware`); `openapi` documents it from the same pydantic types (`schemas`).
"""
