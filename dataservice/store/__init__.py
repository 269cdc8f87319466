"""The data service's tables and repositories, on the VTN's database (one Alembic history)."""
