"""`flex4grid demo`: a pilot on one machine (VTN, VENs, households, feeder) on a simulated clock."""
