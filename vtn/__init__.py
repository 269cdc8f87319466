"""Reserved for the vtn package (see README: Layout); nothing here yet."""
