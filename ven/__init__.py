"""Reserved for the ven package (see README: Layout); nothing here yet."""
