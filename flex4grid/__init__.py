"""Flex4Grid: the `flex4grid` console command that fronts every package's CLI."""
