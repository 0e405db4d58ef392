"""One module per connector whose spec cannot say everything (named by the spec's ``hooks``).

Each defines ``class Hooks(SpecHooks)`` (hub/connectors/connector.py) and overrides only the steps its
provider needs: a handshake, a signature, splitting a batch, the answer.
"""
