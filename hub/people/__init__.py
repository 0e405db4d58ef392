"""A directory of people and their identities across tools, for mentions that tell someone."""
