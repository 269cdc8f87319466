"""Reserved for the market package (see README: Layout); nothing here yet."""
